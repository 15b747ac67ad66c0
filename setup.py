"""fastelu is pure Python: its C++ part (elu_op/csrc/) is compiled on first use against
the torch in use (elu_op/build.py), so one wheel serves every supported torch."""
import pathlib
import re

from setuptools import find_packages, setup

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
        "Operating System :: OS Independent",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    packages=find_packages(include=["elu_op", "elu_op.*"]),
    package_data={"elu_op": ["csrc/*.cpp", "csrc/*.h"]},
    python_requires=">=3.10",
    # triton: on Linux, where it has wheels (torch's own wheels require it there alike); elsewhere
    # (macOS, Windows) fastelu's ops run PyTorch's own elu.
    # numpy: Triton's interpreter, which runs the kernel on CPUs (check, tests), needs it.
    # ninja: what torch.utils.cpp_extension builds the C++ part with.
    install_requires=["torch>=2.9", "triton>=3.5; platform_system == 'Linux'", "numpy", "ninja"],
    # onnx, onnxscript, onnxruntime: tests/test_export.py exports models both ways and runs them.
    extras_require={"test": ["pytest", "hypothesis", "expecttest", "onnx", "onnxscript", "onnxruntime"],
                    "bench": ["matplotlib"]},
)
