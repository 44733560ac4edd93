"""square_map.py: the Python peer of square_map.c: sum(Pool(2).map(square, range(10**6))) as a whole process."""
import multiprocessing
import sys


def square(x):
    return x * x


def main():
    items = int(sys.argv[1]) if len(sys.argv) > 1 else 10**6
    with multiprocessing.Pool(2) as pool:
        results = pool.map(square, range(items))  # default chunksize, as square_map.c's 0
    # mod 2^64 as square_map.c prints it, so the checksums match for any item count.
    print(f"sum {sum(results) % 2**64}")


if __name__ == "__main__":
    main()
