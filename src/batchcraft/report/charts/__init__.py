"""The report's charts, drawn as inline SVG with no plotting dependency.

* `batchcraft.report.charts.svg`: the canvas, scales with round ticks, number format.
* `batchcraft.report.charts.bars`: series, colours, horizontal bars and vertical columns.
* `batchcraft.report.charts.continuous`: histograms, scatter plots and line charts.
"""
