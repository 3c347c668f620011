"""Group analytics (Mixpanel's groups): the accounts a user belongs to, and their profiles.

``set_group``/``add_group``/``remove_group`` keep a super property ``{group_key: [ids]}`` (every
later event carries it) and the same list on the user's profile. ``get_group`` returns a
``Group``, whose operations go to ``/groups/`` as ``{"$token", "$group_key", "$group_id",
"<op>": ...}`` records with a ``$insert_id``, exactly once like profile records.
"""

from .validation import check_list_values, check_names, check_properties, check_str

try:
    from typing import Any
except ImportError:
    pass


def check_group_key(value: "Any") -> str:
    """``value`` as a group key (a non-empty str), or TypeError/ValueError naming it."""
    check_str(value, "group_key")
    if not value.strip():
        raise ValueError("group_key must be a non-empty string")
    text: str = value
    return text


def check_group_id(value: "Any", name: str = "group_id") -> "str | int":
    """``value`` as a group id (a non-empty str or an int), or TypeError/ValueError naming ``name``."""
    if value is True or value is False or not isinstance(value, (str, int)):
        raise TypeError(name + " must be a str or an int, got " + type(value).__name__)
    if isinstance(value, str) and not value.strip():
        raise ValueError(name + " must be a non-empty string")
    return value


def check_group_ids(value: "Any", name: str = "group_ids") -> "list[str | int]":
    """A str or int, or a list of them, as a list (order kept, duplicates dropped)."""
    items = value if isinstance(value, (list, tuple)) else [value]
    ids: "list[str | int]" = []
    for i, item in enumerate(items):
        check_group_id(item, name + "[" + str(i) + "]" if items is value else name)
        if item not in ids:
            ids.append(item)
    return ids


def check_groups(value: "Any") -> "dict[str, list[str | int]]":
    """``track_with_groups``' ``groups``: ``{group_key: id or [ids]}``."""
    if not isinstance(value, dict):
        raise TypeError("groups must be a dict, got " + type(value).__name__)
    out: "dict[str, list[str | int]]" = {}
    for key in value:
        out[check_group_key(key)] = check_group_ids(value[key], "groups[" + repr(key) + "]")
    return out


def with_ids(super_props: "dict[str, Any]", group_key: str, ids: "list[str | int]") -> "dict[str, Any]":
    """``set_group``: the super properties with ``group_key``'s list replaced by ``ids``."""
    merged = dict(super_props)
    merged[group_key] = ids
    return merged


def with_id_added(super_props: "dict[str, Any]", group_key: str, group_id: "str | int") -> "dict[str, Any]":
    """``add_group``: the super properties with ``group_id`` added to ``group_key``'s list (once)."""
    merged = dict(super_props)
    ids = merged.get(group_key)
    ids = list(ids) if isinstance(ids, list) else []
    if group_id not in ids:
        ids.append(group_id)
    merged[group_key] = ids
    return merged


def with_id_removed(super_props: "dict[str, Any]", group_key: str, group_id: "str | int") -> "dict[str, Any]":
    """``remove_group``: the super properties without ``group_id`` in ``group_key``'s list; the
    property goes with its last id."""
    merged = dict(super_props)
    ids = merged.get(group_key)
    ids = [i for i in ids if i != group_id] if isinstance(ids, list) else []
    if ids:
        merged[group_key] = ids
    else:
        merged.pop(group_key, None)
    return merged


class Group:
    """One group's profile: ``EmpMix.get_group("company", "acme").set({"plan": "Pro"})``."""

    def __init__(self, client: "Any", group_key: str, group_id: "str | int") -> None:
        self._client = client
        self.group_key = group_key
        self.group_id = group_id

    def __repr__(self) -> str:
        return "Group(" + repr(self.group_key) + ", " + repr(self.group_id) + ")"

    def _send(self, op: str, value: "Any") -> None:
        self._client._c("Group." + op.lstrip("$")).group_op(self.group_key, self.group_id, op, value)

    def set(self, props: "dict[str, Any]") -> None:
        """``$set`` properties on the group's profile."""
        self._send("$set", check_properties(props, "props"))

    def set_once(self, props: "dict[str, Any]") -> None:
        """``$set_once``: only the properties the group does not have yet."""
        self._send("$set_once", check_properties(props, "props"))

    def unset(self, names: "str | list[str]") -> None:
        """``$unset``: remove properties from the group's profile."""
        self._send("$unset", check_names(names, "names"))

    def union(self, props: "dict[str, list[Any]]") -> None:
        """``$union``: add values to list properties, each value once."""
        self._send("$union", check_list_values(props))

    def remove(self, props: "dict[str, Any]") -> None:
        """``$remove``: remove a value from a list property."""
        self._send("$remove", check_properties(props, "props"))

    def delete(self) -> None:
        """``$delete``: delete the group's profile."""
        self._send("$delete", "")
