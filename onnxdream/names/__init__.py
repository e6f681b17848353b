"""Naming strategies for ``rename``: where a node's name can come from, one module per strategy.

- ``metadata``: the exporter's scope metadata (``pkg.torch.onnx.name_scopes``);
- ``weights``: the common stem of a node's parameter names;
- ``tensors``: meaningful output tensor names;
- ``structure``: the scope of named neighbours plus the op type, else ``<OpType>_<k>``;
- ``mapping``: explicit renames (a JSON map, regex rules, a prefix to strip), applied last.

``plan.py`` combines them per node in that order of evidence; ``apply.py`` edits the model.
"""
