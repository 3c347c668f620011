"""empmix-collector: the reference collector for empmix-web.

Import names from the module that owns them, for example
``from empmix_collector.http.app import create_app`` or
``from empmix_collector.settings import Settings``.
"""

from empmix_collector.domain.signing import sign_identity
from empmix_web.version import VERSION as __version__  # one version for the SDK and the collector

__all__ = ["sign_identity", "__version__"]
