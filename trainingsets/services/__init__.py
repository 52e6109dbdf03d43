"""Every write of the trainingsets app: sets, versions (build, gate, decisions) and erasures."""
from .erasure import erasure_actor, erasure_record, erasure_retry, erasure_rewrite_files  # noqa: F401
from .errors import *  # noqa: F401,F403  (one place lists every refusal)
from .sets import trainingset_create, trainingset_update  # noqa: F401
from .versions import version_build, version_fail, version_progress, version_rebuild, version_request  # noqa: F401
