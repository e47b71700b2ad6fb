"""The parts of ``benchmarks/server_throughput.py``: servers, load generators, the CPU and memory meter, the report."""
