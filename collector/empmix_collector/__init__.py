"""empmix-collector: the reference collector for empmix-web.

Import names from the module that owns them, for example
``from empmix_collector.http.app import create_app`` or
``from empmix_collector.settings import Settings``.
"""

__version__ = "0.1.0"
