from setuptools import find_packages, setup

from tailrabbit import __version__

setup(
    name="tailrabbit",
    version=__version__,
    description="Ship log lines from FIFOs, stdin and log files into RabbitMQ, confirmed.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tailrabbit", "tailrabbit.*"]),
    # scripts/test-versions reads the 3.N classifiers below: CI runs the unit and
    # integration tests on the oldest and newest of them that pyenv has.
    python_requires=">=3.9",
    install_requires=[
        "gevent>=22.10,<27",
        "amqp>=5.1,<6",
        "watchdog>=3,<8",
        "docopt-ng>=0.9,<0.10",
        "prometheus-client>=0.16,<1",
    ],
    entry_points={"console_scripts": ["tailrabbit = tailrabbit.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.9",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Operating System :: POSIX :: Linux",
    ],
)
