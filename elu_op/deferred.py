"""Run registration code once a module is imported, without importing it ourselves.

Inductor (3 s), DTensor (1 s) and torch.onnx are expensive to import: fastelu registers its
lowerings, its sharding rules and its ONNX symbolic only once the user's program has loaded them.
"""
import importlib.abc
import importlib.util
import sys


class _AfterImport(importlib.abc.MetaPathFinder):
    def __init__(self, name):
        self.name, self.callbacks = name, []

    def find_spec(self, name, path, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_register(module):
            exec_module(module)
            for callback in self.callbacks:
                callback()

        spec.loader.exec_module = exec_and_register
        return spec


def after_import(name, callback):
    """callback() now if module `name` is loaded, else right after it first is. Each callback once,
    however often it is asked for; every one asked for, in order."""
    if name in sys.modules:
        callback()
        return
    finder = next((f for f in sys.meta_path if isinstance(f, _AfterImport) and f.name == name), None)
    if finder is None:
        finder = _AfterImport(name)
        sys.meta_path.insert(0, finder)
    if callback not in finder.callbacks:
        finder.callbacks.append(callback)
