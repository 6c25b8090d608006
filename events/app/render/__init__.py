"""``fnevents render``: Kubernetes objects and Helm values computed from the manifests.

:mod:`.names` names every object; :mod:`.files` makes the files the pods read;
:mod:`.model` plans each role (replicas, ports, scaling, Dapr); :mod:`.keda`,
:mod:`.dapr`, :mod:`.objects` and :mod:`.values` turn the plans into YAML;
:mod:`.command` is the command line.
"""
