"""empmix-web benchmarks (issue 6): run ``./build.sh bench`` or ``python bench/run.py --help``."""
