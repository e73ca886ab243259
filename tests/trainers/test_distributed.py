"""Data parallelism over a real two-process gloo group on loopback."""

import os
import socket

import pytest

torch = pytest.importorskip("torch")
mp = pytest.importorskip("torch.multiprocessing")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker(rank: int, port: int, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE="2")
    from matpo_gym.trainers.distributed import DataParallel

    parallel = DataParallel(cpu=True)
    model = torch.nn.Linear(3, 2)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    if rank == 0:  # rank 1 has no tokens this step: it must still join the all-reduce
        model(torch.full((1, 3), 2.0)).sum().backward()
    parallel.sum_gradients(model)
    queue.put((
        rank,
        parallel.shard(list(range(7))),
        parallel.sum(rank + 1.0),
        parallel.gather([f"r{rank}"]),
        [p.grad.tolist() for p in model.parameters()],
    ))
    parallel.barrier()
    torch.distributed.destroy_process_group()


def test_two_processes_shard_reduce_and_sum_gradients():
    context = mp.get_context("spawn")
    queue = context.Queue()
    port = free_port()
    processes = [context.Process(target=worker, args=(rank, port, queue)) for rank in range(2)]
    for process in processes:
        process.start()
    outputs = dict((item[0], item[1:]) for item in (queue.get(timeout=120) for _ in processes))
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert outputs[0][0] == [0, 2, 4, 6] and outputs[1][0] == [1, 3, 5]
    assert outputs[0][1] == outputs[1][1] == 3.0
    assert outputs[0][2] == outputs[1][2] == ["r0", "r1"]
    expected = [[[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]], [1.0, 1.0]]  # rank 0's gradient, summed with zeros
    assert outputs[0][3] == outputs[1][3] == expected
