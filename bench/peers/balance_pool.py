"""balance_pool.py: balance.c's uneven items on Python's pools: Pool.imap_unordered, ThreadPoolExecutor.map, mpi4py.futures.

    /usr/bin/python3 balance_pool.py --tool pool --workers 8 --dist exp --kind sleep --items 8000
    /usr/bin/python3 balance_pool.py --tool threads --workers 8 --dist tail --items 4000
    mpirun -n 9 --oversubscribe /usr/bin/python3 -m mpi4py.futures balance_pool.py --tool mpi4py --dist exp --items 8000

Each item's cost comes from its index by the arithmetic of balance_costs.h,
bit for bit (`--list-costs` prints the bits, as `balance --list-costs`
does); each item measures its own duration and the line printed has the same
fields as balance.c's, so balance.sh reads every tool alike. Under
`-m mpi4py.futures` every rank but the root is a worker, so W = ranks - 1.
"""
import argparse
import functools
import math
import os
import struct
import sys
import threading
import time

MASK64 = (1 << 64) - 1
SEED = 0x68706F6F6C  # "hpool", BALANCE_SEED in balance_costs.h
DISTRIBUTIONS = ("u1us", "u1ms", "u100ms", "exp", "tail", "giant_first", "giant_last", "rising")
KINDS = ("sleep", "spin")


def splitmix64(x):
    # balance_splitmix64(), with every sum and product wrapped to 64 bits as C's uint64_t does.
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def uniform(index):
    # The top 53 bits are exact in a float, and so is the product with 2**-53.
    return (splitmix64((SEED + index) & MASK64) >> 11) * 2.0**-53


def cost_seconds(distribution, mean, items, workers, index):
    """The cost of item index: balance_cost_seconds(), the same operations in the same order."""
    if distribution == "u1us":
        return 1e-6
    if distribution == "u1ms":
        return 1e-3
    if distribution == "u100ms":
        return 0.1
    if distribution == "exp":
        # math.log is the C library's log(), the one balance.c calls.
        return -mean * math.log(1.0 - uniform(index))
    if distribution == "tail":
        return 100.0 * mean if index % 100 == 37 else mean
    if distribution == "giant_first":
        return float(items) * mean / float(workers) if index == 0 else mean
    if distribution == "giant_last":
        return float(items) * mean / float(workers) if index + 1 == items else mean
    if distribution == "rising":
        return 2.0 * mean * (float(index) + 0.5) / float(items)
    raise ValueError(distribution)


def sleep_item(cost_ns):
    # As balance_sleep_item(): towards an absolute deadline, however often
    # time.sleep() wakes early, and the wall time it really took is returned.
    start = time.monotonic_ns()
    deadline = start + cost_ns
    now = start
    while now < deadline:
        time.sleep((deadline - now) * 1e-9)
        now = time.monotonic_ns()
    return now - start


def spin_item(cost_ns):
    # As balance_spin_item(): this thread's CPU time, so that time lost to
    # preemption is neither work done nor a finished item.
    start = time.thread_time_ns()
    used = 0
    while used < cost_ns:
        used = time.thread_time_ns() - start
    return used


def run_item(distribution, kind, mean, items, workers, index):
    """One item, in a worker: its measured duration in ns. Module level, so that the pools can pickle it."""
    cost_ns = int(cost_seconds(distribution, mean, items, workers, index) * 1e9 + 0.5)
    return sleep_item(cost_ns) if kind == "sleep" else spin_item(cost_ns)


def noop(_):
    return None


def run_pool(function, items, workers):
    import multiprocessing

    with multiprocessing.Pool(workers) as pool:
        # Every worker has started and imported this module before the clock runs.
        pool.map(noop, range(workers), chunksize=1)
        start = time.perf_counter()
        durations = list(pool.imap_unordered(function, range(items), chunksize=1))
        return time.perf_counter() - start, durations


def run_threads(function, items, workers):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as executor:
        # The executor starts threads lazily, one per submit while none is
        # idle; a barrier that W tasks wait on makes it start all W now.
        barrier = threading.Barrier(workers)
        list(executor.map(lambda _: barrier.wait(), range(workers)))
        start = time.perf_counter()
        durations = list(executor.map(function, range(items)))
        return time.perf_counter() - start, durations


def run_mpi4py(function, items):
    from mpi4py import MPI
    from mpi4py.futures import MPIPoolExecutor

    with MPIPoolExecutor() as executor:
        # Wait for the workers, then give each a task, so that only the map is timed.
        executor.bootup()
        workers = MPI.COMM_WORLD.Get_size() - 1
        list(executor.map(noop, range(workers), chunksize=1))
        start = time.perf_counter()
        durations = list(executor.map(function, range(items), chunksize=1))
        return time.perf_counter() - start, durations


def print_line(args, ranks, threads, seconds, durations):
    # balance_print_line()'s fields and bound: spinning workers beyond the cores only take turns.
    # nominal_sum, the costs as asked for, shows how much the measured work was inflated.
    workers = ranks * threads
    mean = args.mean_us * 1e-6
    nominal_sum = sum(cost_seconds(args.dist, mean, args.items, workers, i) for i in range(args.items))
    parallel = min(workers, args.cores) if args.kind == "spin" else workers
    work_sum = sum(durations) * 1e-9
    longest = max(durations) * 1e-9
    bound = max(work_sum / parallel, longest)
    print(f"tool {args.tool} dist {args.dist} kind {args.kind} ranks {ranks} threads {threads} "
          f"workers {workers} items {args.items} seconds {seconds:.6f} work_sum {work_sum:.6f} "
          f"longest {longest:.6f} bound {bound:.6f} efficiency {bound / seconds:.4f} nominal_sum {nominal_sum:.6f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tool", choices=("pool", "threads", "mpi4py"), default="pool")
    parser.add_argument("--dist", choices=DISTRIBUTIONS, default="u1ms")
    parser.add_argument("--kind", choices=KINDS, default="sleep")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--mean-us", type=float, default=1000.0,
                        help="mean cost M of exp, tail, giant_*, rising, in µs (1000)")
    parser.add_argument("--workers", type=int, default=2,
                        help="W, for pool and threads (mpi4py: the ranks less the root)")
    parser.add_argument("--cores", type=int, default=os.cpu_count(),
                        help="cores the spin bound allows (the machine's CPUs)")
    parser.add_argument("--list-costs", action="store_true",
                        help="print each item's cost as the bits of a double and exit")
    args = parser.parse_args()
    if args.items < 1 or args.workers < 1 or args.cores < 1 or args.mean_us <= 0:
        parser.error("--items, --workers, --cores and --mean-us must be positive")

    mean = args.mean_us * 1e-6
    if args.list_costs:
        for index in range(args.items):
            cost = cost_seconds(args.dist, mean, args.items, args.workers, index)
            print(f"{index} {struct.unpack('<Q', struct.pack('<d', cost))[0]:016x}")
        return
    if args.tool == "threads" and args.kind == "spin":
        # Spinning threads take turns on the GIL: they would measure the GIL, not the pool.
        parser.error("--tool threads runs sleep items only")

    if args.tool == "mpi4py":
        from mpi4py import MPI

        workers = MPI.COMM_WORLD.Get_size() - 1
        if workers < 1:
            sys.exit("balance_pool: mpi4py needs at least 2 ranks: mpirun -n W+1 python3 -m mpi4py.futures ...")
    else:
        workers = args.workers
    function = functools.partial(run_item, args.dist, args.kind, mean, args.items, workers)
    if args.tool == "pool":
        seconds, durations = run_pool(function, args.items, workers)
        ranks, threads = workers, 1
    elif args.tool == "threads":
        seconds, durations = run_threads(function, args.items, workers)
        ranks, threads = 1, workers
    else:
        seconds, durations = run_mpi4py(function, args.items)
        ranks, threads = workers, 1

    if len(durations) != args.items or min(durations) <= 0:
        sys.exit(f"balance_pool: {len(durations)} durations for {args.items} items, or an item that took no time")
    print_line(args, ranks, threads, seconds, durations)


if __name__ == "__main__":
    main()
