"""Cloners: the verbs loadgen needs (golden, clone, full copy, drift, delete, adopt) per platform.

base.py is the contract and its errors, names.py our mark and clone names, factory.py picks the
cloner for a scenario: native.py (qcow2, RBD; ownership in manifest.py, commands by native_run.py)
or kube.py (the objects it creates built in kube_objects.py, VM clones through KubeVirt in kube_vm.py).
"""
