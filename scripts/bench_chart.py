"""The chart beside bench/REPORT.md: one bar per workload, thumbfs against libvips = 1.0.

`bench.py chart` (through `scripts/bench.sh chart`) redraws bench/chart.svg from the report's
tables as they stand, and `bench.py` calls it after every run that writes the report. Only
rows whose anchor is libvips (its CLI, in-process through pyvips, or libvips behind ffmpeg)
are drawn; each bar is thumbfs' time (or peak memory) over libvips', so shorter is better
everywhere. Throughput rows (photos/s) are turned into time ratios (anchor / thumbfs).
"""

import re

RATIO = re.compile(r"([0-9]+(?:\.[0-9]+)?)x")


def tables(text):
    """Yields (section heading, header cells, row cells) for every Markdown table row."""
    section, head = "", None
    for line in text.splitlines():
        if line.startswith("## "):
            section, head = line[3:].strip(), None
            continue
        if not line.startswith("|"):
            head = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if head is None:
            head = [c.lower() for c in cells]
        elif not all(set(c) <= set("-: ") for c in cells):
            yield section, head, cells


def ratio_of(cells, head):
    """The first `N.NNx` in the row's ratio column, or None."""
    for i, h in enumerate(head):
        if h.startswith("ratio") and i < len(cells):
            m = RATIO.search(cells[i])
            return float(m.group(1)) if m else None
    return None


def bars(text):
    """(group, label, thumbfs / libvips) for every row that compares against libvips."""
    out = []
    for section, head, cells in tables(text):
        r = ratio_of(cells, head)
        if r is None or r == 0:
            continue
        row = dict(zip(head, cells))
        tag = section.split(":")[0]
        if section == "" and "workload" in row:
            if "vips" not in row.get("anchor", ""):
                continue
            # Rows measured in photos/s or MB/s are thumbfs / anchor throughput.
            inverse = "/s" in row.get("thumbfs", "")
            out.append(("time", row["workload"], 1 / r if inverse else r))
        elif tag == "W8" and "workload" in row:
            name = row["file"].split("_by_")[0] + (" baseline" if ".baseline." in row["file"] else " original")
            out.append(("time", f"W8 {name}: {row['workload']}", r))
        elif tag == "W10" and "format" in row:
            out.append(("time", f"W10 {row['format']}: w256", r))
        elif tag == "W12" and "measurement" in row:
            out.append(("time", f"W12 video poster: {row['measurement']}", r))
        elif tag == "W13" and "case" in row:
            out.append(("time", f"W13 GIF: {row['case']}", r))
        elif tag == "W11" and "case" in row:
            out.append(("peak memory", f"W11 {row['case'].split(' (')[0]}", r))
    return out


def draw(report_path, svg_path):
    """Writes the chart as SVG; returns the number of bars."""
    import matplotlib

    matplotlib.use("svg")
    matplotlib.rcParams["svg.hashsalt"] = "thumbfs"  # stable ids: the file changes only with the data
    matplotlib.rcParams["svg.fonttype"] = "none"
    import matplotlib.pyplot as plt

    rows = bars(open(report_path).read())
    if not rows:
        return 0
    rows.reverse()  # barh draws bottom-up; keep the report's order top-down
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(rows) + 1.4))
    ys = range(len(rows))
    colours = ["#3a7d44" if r <= 1.0 else "#b5452f" for _, _, r in rows]
    ax.barh(ys, [r for _, _, r in rows], color=colours, height=0.7)
    ax.set_yticks(list(ys), [f"{label} ({group})" if group != "time" else label
                             for group, label, _ in rows], fontsize=8)
    ax.axvline(1.0, color="black", linewidth=1)
    for y, (_, _, r) in zip(ys, rows):
        ax.text(r + 0.02, y, f"{r:.2f}x", va="center", fontsize=7)
    ax.set_xlabel("thumbfs / libvips (time, or peak RSS where marked); libvips = 1.0, shorter is better")
    ax.set_xlim(0, max(1.6, max(r for _, _, r in rows) * 1.12))
    ax.set_title("thumbfs against libvips, from bench/REPORT.md", fontsize=10)
    fig.tight_layout()
    fig.savefig(svg_path, metadata={"Date": None})
    plt.close(fig)
    return len(rows)
