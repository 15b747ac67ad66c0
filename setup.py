from setuptools import find_packages, setup

setup(
    name="fastelu",
    version="0.1.0",
    description="ELU, SELU and CELU as Triton kernels behind torch.library",
    packages=find_packages(include=["elu_op", "elu_op.*"]),
    python_requires=">=3.10",
    install_requires=["torch>=2.11", "triton>=3.6"],
    extras_require={"test": ["pytest", "hypothesis", "numpy"], "bench": ["matplotlib"]},
)
