"""Model integration: drop-in modules, and patch/unpatch of a model."""
import torch

# The functions themselves, not functional's attributes: under torch.compile, reaching the module
# through a second name costs every call of the compiled model a Python guard (that both names are
# still the same module). They also serve TorchScript (each has its scripted branch).
from .functional import _check_save, celu, elu, selu


class FastELU(torch.nn.ELU):
    """torch.nn.ELU computed by fastelu. Same arguments, repr and (empty) state_dict; save: what
    autograd keeps for the gradient (functional.elu's: None as PyTorch, or 'output')."""

    def __init__(self, alpha=1.0, inplace=False, save=None):
        super().__init__(alpha, inplace)
        self.save = save

    def forward(self, input):
        return elu(input, self.alpha, self.inplace, self.save)

    def extra_repr(self):
        return _with_save(super().extra_repr(), self)


class FastSELU(torch.nn.SELU):
    """torch.nn.SELU computed by fastelu."""

    def __init__(self, inplace=False, save=None):
        super().__init__(inplace)
        self.save = save

    def forward(self, input):
        return selu(input, self.inplace, self.save)

    def extra_repr(self):
        return _with_save(super().extra_repr(), self)


class FastCELU(torch.nn.CELU):
    """torch.nn.CELU computed by fastelu."""

    def __init__(self, alpha=1.0, inplace=False, save=None):
        super().__init__(alpha, inplace)
        self.save = save

    def forward(self, input):
        return celu(input, self.alpha, self.inplace, self.save)

    def extra_repr(self):
        return _with_save(super().extra_repr(), self)


def _with_save(text, module):
    return text if module.save is None else f"{text}, save={module.save!r}"


# Exact types only: a user's own subclass of nn.ELU may do more than ELU.
_FAST = {torch.nn.ELU: FastELU, torch.nn.SELU: FastSELU, torch.nn.CELU: FastCELU}
_ORIGINAL = {fast: orig for orig, fast in _FAST.items()}


def _swap(model, table, save):
    # Changing __class__ keeps the instance (its settings, hooks, and every place that shares it).
    count = 0
    for module in model.modules():  # modules() yields a shared instance once
        new = table.get(type(module))
        if new is not None:
            module.__class__ = new
            if new in _ORIGINAL:
                module.save = save
            else:
                del module.save
            count += 1
    return count


def patch(model, save=None):
    """Make every nn.ELU, nn.SELU and nn.CELU in model (itself included) use fastelu; return how many.
    save: what their autograd keeps (functional.elu's: None as PyTorch, or 'output')."""
    _check_save("patch", save, False, 1.0, 1.0, 1.0)  # the value alone: each module's coefficients are its own
    return _swap(model, _FAST, save)


def unpatch(model):
    """Undo patch: put the torch.nn classes back; return how many modules changed."""
    return _swap(model, _ORIGINAL, None)
