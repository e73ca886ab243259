import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def pytest_benchmark_update_machine_info(config, machine_info):
    """Name the GPU the model benchmarks ran on, if any (pytest-benchmark records only the CPU)."""
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        machine_info["gpu"] = f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}, torch {torch.__version__})"
