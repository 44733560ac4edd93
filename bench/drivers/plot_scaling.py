#!/usr/bin/python3
"""plot_scaling.py: draws scaling.sh's table (its TABLE, not the TSV rows every driver appends) as a PNG, one panel per workload.

    /usr/bin/python3 bench/drivers/plot_scaling.py BUILD/bench-results/scaling-table.tsv bench/results/scaling.png

Needs matplotlib: Debian's python3-matplotlib (apt-get install
python3-matplotlib), hence Debian's interpreter. Each configuration gets two
bars: the speedup over one core of the whole process, and for the MPI rows
the same with mpirun's and MPI's start-up taken out. The dashed line at 2 is
perfect scaling on two cores.
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402


def read_rows(path):
    with open(path, newline="") as table:
        return list(csv.DictReader(table, delimiter="\t"))


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_scaling.py TABLE.tsv OUT.png")
    rows = read_rows(sys.argv[1])
    workloads = list(dict.fromkeys(row["workload"] for row in rows))
    figure, axes = plt.subplots(1, len(workloads), figsize=(5.2 * len(workloads), 4.2), sharey=True, squeeze=False)
    for axis, workload in zip(axes[0], workloads):
        mine = [row for row in rows if row["workload"] == workload]
        labels = [
            f"{row['cores']} core{'s' if row['cores'] != '1' else ''}\n{row['ranks']} rank × {row['threads']} thr"
            for row in mine
        ]
        whole = [float(row["speedup"]) for row in mine]
        less = [float(row["speedup_less_startup"]) if row["ranks"] != "1" else float(row["speedup"]) for row in mine]
        positions = range(len(mine))
        width = 0.38
        bars = axis.bar([p - width / 2 for p in positions], whole, width, label="whole process", color="#3b6ea8")
        axis.bar([p + width / 2 for p in positions], less, width, label="less MPI start-up", color="#9cc3e6")
        for bar, row in zip(bars, mine):
            axis.annotate(f"{float(row['seconds']):.2f} s", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                          ha="center", va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
        axis.axhline(2.0, color="gray", linestyle="--", linewidth=1)
        axis.axhline(1.0, color="gray", linestyle=":", linewidth=1)
        axis.set_xticks(list(positions))
        axis.set_xticklabels(labels, fontsize=8)
        axis.set_title(workload)
        axis.set_ylim(0, 2.8)
    axes[0][0].set_ylabel("speedup over 1 core (best wall time)")
    axes[0][0].legend(loc="upper left", fontsize=8)
    figure.suptitle("hpool strong scaling, 1 → 2 cores: ranks vs threads", fontsize=11)
    figure.tight_layout()
    figure.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
