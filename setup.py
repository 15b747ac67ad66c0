"""Needs torch installed first and is built against it: pip install --no-build-isolation -e ."""
import pathlib
import re

from setuptools import find_packages, setup

try:
    from torch.utils.cpp_extension import BuildExtension, CppExtension
except ImportError as e:
    raise SystemExit(f"fastelu builds a C++ extension against your torch, which did not import ({e}): install "
                     f"torch first, then pip install --no-build-isolation -e . (so that the build sees it)")

HERE = pathlib.Path(__file__).parent
VERSION = re.search(r'__version__ = "(.+)"', (HERE / "elu_op" / "__init__.py").read_text()).group(1)

setup(
    name="fastelu",
    version=VERSION,
    description="ELU, SELU and CELU as Triton kernels behind torch.library",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="MIT",
    license_files=["LICENSE"],
    classifiers=[
        "Development Status :: 4 - Beta",
        "Intended Audience :: Science/Research",
        "Programming Language :: Python :: 3",
        "Programming Language :: C++",
        "Operating System :: POSIX :: Linux",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    packages=find_packages(include=["elu_op", "elu_op.*"]),
    # The C++ launches the Triton kernels through the CUDA driver (loaded at run time), so it
    # needs no CUDA toolkit, and builds against a CPU-only torch too.
    ext_modules=[CppExtension("elu_op._C", ["elu_op/csrc/fastelu.cpp"])],
    cmdclass={"build_ext": BuildExtension},
    python_requires=">=3.10",
    # numpy: Triton's interpreter, which runs the kernel on CPUs (check, tests), needs it.
    install_requires=["torch>=2.11", "triton>=3.6", "numpy"],
    extras_require={"test": ["pytest", "hypothesis", "expecttest"], "bench": ["matplotlib"]},
)
