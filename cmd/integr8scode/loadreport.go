package main

import (
	"fmt"
	"html"
	"math"
	"sort"
	"strings"
)

// The load report as a page that needs nothing but itself: inline SVG line
// charts, no script, no font or style from elsewhere.

type series struct {
	name   string
	points []float64 // one per time slice
}

var chartColours = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"}

// lineChart draws series over the report's time slices.
func lineChart(title, unit string, ts []float64, ss []series, width, height int) string {
	const left, right, top, bottom = 56, 140, 28, 32
	w, h := float64(width-left-right), float64(height-top-bottom)
	maxY := 0.0
	for _, s := range ss {
		for _, v := range s.points {
			if !math.IsNaN(v) { // a window where the operation did not occur
				maxY = math.Max(maxY, v)
			}
		}
	}
	if maxY == 0 {
		maxY = 1
	}
	maxY = niceCeil(maxY)
	maxT := 1.0
	if len(ts) > 0 {
		maxT = math.Max(ts[len(ts)-1], 1)
	}
	x := func(t float64) float64 { return left + t/maxT*w }
	y := func(v float64) float64 { return top + h - v/maxY*h }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s" font-family="sans-serif" font-size="11">`,
		width, height, width, height, html.EscapeString(title))
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#fff"/><text x="%d" y="16" font-size="13" font-weight="bold">%s</text>`, left, html.EscapeString(title))
	for i := 0; i <= 4; i++ {
		v := maxY * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`,
			left, left+w, y(v), y(v), left-6, y(v)+4, fmtNum(v))
	}
	for i := 0; i <= 5; i++ {
		t := maxT * float64(i) / 5
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%.0f s</text>`, x(t), height-10, t)
	}
	fmt.Fprintf(&b, `<text x="12" y="%d" transform="rotate(-90 12 %d)" text-anchor="middle">%s</text>`, top+int(h/2), top+int(h/2), html.EscapeString(unit))
	for i, s := range ss {
		colour := chartColours[i%len(chartColours)]
		var pts []string
		for j, v := range s.points {
			if j < len(ts) && !math.IsNaN(v) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(ts[j]), y(v)))
			}
		}
		if len(pts) > 0 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"/>`, colour, strings.Join(pts, " "))
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`,
			width-right+12, top+i*16, colour, width-right+26, top+i*16+9, html.EscapeString(s.name))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func fmtNum(v float64) string {
	switch {
	case v >= 100 || v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func timeAxis(rep loadReport) []float64 {
	ts := make([]float64, len(rep.Timeline))
	for i, s := range rep.Timeline {
		ts[i] = s.At
	}
	return ts
}

// opGroups are the operation groups the timeline has, sorted.
func opGroups(rep loadReport) []string {
	seen := map[string]bool{}
	for _, s := range rep.Timeline {
		for g := range s.P95 {
			seen[g] = true
		}
	}
	var out []string
	for g := range seen {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}

// latencyChart is p95 per operation group over time: the picture for
// docs/performance.md.
func latencyChart(rep loadReport, width, height int) string {
	return percentileChart(rep, "p95", width, height)
}

func percentileChart(rep loadReport, which string, width, height int) string {
	var ss []series
	for _, g := range opGroups(rep) {
		s := series{name: g}
		for _, sl := range rep.Timeline {
			m := map[string]map[string]float64{"p50": sl.P50, "p95": sl.P95, "p99": sl.P99}[which]
			v, ok := m[g]
			if !ok {
				v = math.NaN()
			}
			s.points = append(s.points, v)
		}
		ss = append(ss, s)
	}
	title := fmt.Sprintf("%s latency by operation (%s, %d users)", which, rep.Profile, rep.Users)
	return lineChart(title, "ms", timeAxis(rep), ss, width, height)
}

func reportHTML(rep loadReport) string {
	ts := timeAxis(rep)
	pick := func(f func(timeSlice) float64) []float64 {
		out := make([]float64, len(rep.Timeline))
		for i, s := range rep.Timeline {
			out[i] = f(s)
		}
		return out
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<!doctype html><html lang="en"><meta charset="utf-8"><title>Load test: %s</title>
<style>body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}th:first-child,td:first-child{text-align:left}svg{display:block;margin:1em 0}</style>
<h1>Load test: profile %s</h1>
<p>%d simulated users (%d signed in) for %.0f s: %d requests, %d failed. The platform's peak resident memory %.0f MiB, %.1f CPU-seconds over the run.</p>`,
		html.EscapeString(rep.Profile), html.EscapeString(rep.Profile), rep.Users, rep.SignedUsers, rep.Duration, rep.Requests, rep.Failed,
		rep.PeakRSS/(1<<20), rep.CPUSeconds)
	b.WriteString(`<h2>Operations</h2><table><tr><th>operation</th><th>count</th><th>failed</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th></tr>`)
	ops := make([]string, 0, len(rep.Operations))
	for op := range rep.Operations {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, op := range ops {
		o := rep.Operations[op]
		fmt.Fprintf(&b, `<tr><td>%s</td><td>%d</td><td>%d</td><td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%.1f</td></tr>`,
			html.EscapeString(op), o.Count, o.Failed, o.P50, o.P95, o.P99, o.Max)
	}
	b.WriteString(`</table><h2>Over time</h2>`)
	b.WriteString(lineChart("Requests per second", "req/s", ts, []series{
		{"requests", pick(func(s timeSlice) float64 { return s.Requests })},
		{"failed", pick(func(s timeSlice) float64 { return s.Failed })}}, 900, 260))
	for _, p := range []string{"p50", "p95", "p99"} {
		b.WriteString(percentileChart(rep, p, 900, 260))
	}
	b.WriteString(lineChart("Queue", "executions", ts, []series{
		{"queued", pick(func(s timeSlice) float64 { return float64(s.Queued) })},
		{"running", pick(func(s timeSlice) float64 { return float64(s.Running) })}}, 900, 220))
	b.WriteString(lineChart("Platform CPU (from its /metrics)", "cores", ts, []series{
		{"CPU", pick(func(s timeSlice) float64 { return s.CPUCores })}}, 900, 220))
	b.WriteString(lineChart("Platform memory (resident)", "MiB", ts, []series{
		{"RSS", pick(func(s timeSlice) float64 { return s.RSSBytes / (1 << 20) })}}, 900, 220))
	if len(rep.Errors) > 0 {
		b.WriteString(`<h2>Errors</h2><ul>`)
		for msg, n := range rep.Errors {
			fmt.Fprintf(&b, `<li>%d × %s</li>`, n, html.EscapeString(msg))
		}
		b.WriteString(`</ul>`)
	}
	b.WriteString("</html>\n")
	return b.String()
}
