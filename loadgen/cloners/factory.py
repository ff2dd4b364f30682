"""The cloner for a scenario's backend."""

from ..scenario import Scenario
from .base import Cloner
from .kube import KubeCloner
from .native import Qcow2Cloner, RbdCloner


def make_cloner(scenario: Scenario, run: str) -> Cloner:
    if scenario.backend == "kubernetes":
        return KubeCloner(scenario, run)
    return Qcow2Cloner(scenario, run) if scenario.backend == "qcow2" else RbdCloner(scenario, run)
