"""tiny_pool.py: the multiprocessing peer of tiny.c: Pool(2).map of an almost empty function, chunksize 1."""
import argparse
import multiprocessing
import time


def plus_one(x):
    # As tiny.c's map function: nearly no work, so the figure is the pool's own cost per item.
    return x + 1


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=10**6)
    parser.add_argument("--chunksize", type=int, default=1)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()

    with multiprocessing.Pool(args.processes) as pool:
        # Only the map call is timed, as tiny.c times only hpool_map(): the
        # workers' start-up is left out on both sides.
        start = time.perf_counter()
        results = pool.map(plus_one, range(args.items), chunksize=args.chunksize)
        seconds = time.perf_counter() - start

    if results != list(range(1, args.items + 1)):
        raise SystemExit("tiny_pool: wrong results")
    print(f"tool python-pool processes {args.processes} items {args.items} "
          f"chunksize {args.chunksize} seconds {seconds:.6f} items/s {args.items / seconds:.4g}")


if __name__ == "__main__":
    main()
