"""tiny_mpi4py.py: the mpi4py.futures peer of tiny.c: MPIPoolExecutor.map of an almost empty function, chunksize 1.

Run it the way mpi4py documents for a static pool of workers, one root plus
two workers:

    mpirun -n 3 --oversubscribe /usr/bin/python3 -m mpi4py.futures tiny_mpi4py.py --items 50000
"""
import argparse
import time

from mpi4py import MPI
from mpi4py.futures import MPIPoolExecutor


def plus_one(x):
    # As tiny.c's map function: nearly no work, so the figure is the pool's own cost per item.
    return x + 1


def main():
    parser = argparse.ArgumentParser(description="mpi4py.futures peer of tiny.c")
    parser.add_argument("--items", type=int, default=50000)
    parser.add_argument("--chunksize", type=int, default=1)
    args = parser.parse_args()

    # Under `-m mpi4py.futures` every rank but the root is a worker (mpi4py
    # 3.1 has no executor.num_workers yet).
    workers = MPI.COMM_WORLD.Get_size() - 1
    with MPIPoolExecutor() as executor:
        # Wait until the workers are up, so that, as in tiny.c, only the map is timed.
        executor.bootup()
        start = time.perf_counter()
        results = list(executor.map(plus_one, range(args.items), chunksize=args.chunksize))
        seconds = time.perf_counter() - start

    if results != list(range(1, args.items + 1)):
        raise SystemExit("tiny_mpi4py: wrong results")
    print(f"tool mpi4py-futures workers {workers} items {args.items} "
          f"chunksize {args.chunksize} seconds {seconds:.6f} items/s {args.items / seconds:.4g}")


if __name__ == "__main__":
    main()
