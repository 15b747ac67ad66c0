"""Needs torch installed first and is built against it: pip install --no-build-isolation -e ."""
from setuptools import find_packages, setup

try:
    from torch.utils.cpp_extension import BuildExtension, CppExtension
except ImportError as e:
    raise SystemExit(f"fastelu builds a C++ extension against your torch, which did not import ({e}): install "
                     f"torch first, then pip install --no-build-isolation -e . (so that the build sees it)")

setup(
    name="fastelu",
    version="0.1.0",
    description="ELU, SELU and CELU as Triton kernels behind torch.library",
    packages=find_packages(include=["elu_op", "elu_op.*"]),
    # The C++ launches the Triton kernels through the CUDA driver (loaded at run time), so it
    # needs no CUDA toolkit, and builds against a CPU-only torch too.
    ext_modules=[CppExtension("elu_op._C", ["elu_op/csrc/fastelu.cpp"])],
    cmdclass={"build_ext": BuildExtension},
    python_requires=">=3.10",
    install_requires=["torch>=2.11", "triton>=3.6"],
    extras_require={"test": ["pytest", "hypothesis", "numpy", "expecttest"], "bench": ["matplotlib"]},
)
