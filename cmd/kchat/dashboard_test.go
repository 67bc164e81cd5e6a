package main

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kchat/kchat/adapters/auth"
	"github.com/kchat/kchat/internal/kafkatest"
	"github.com/kchat/kchat/internal/testenv"
)

// dashboardFile is the Grafana dashboard docker-compose.yml provisions.
var dashboardFile = filepath.Join("..", "..", "deploy", "grafana", "dashboards", "kchat.json")

// Every metric the Grafana dashboard queries is one kchat exports: the
// all-in-one, which registers every service's metrics on its one registry,
// is started on kfake, answers one question over WebSocket (so that the
// groups have committed offsets and their lag is exported), and its
// /metrics must declare a family for each name in the panels' PromQL (a
// histogram's _bucket, _sum and _count series belong to its family).
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	queried, queries := dashboardMetrics(t, dashboardFile)
	if len(queried) < 10 {
		t.Fatalf("the dashboard queries only %v", queried)
	}
	t.Logf("the dashboard queries %d metrics: %v", len(queried), slices.Sorted(maps.Keys(queried)))

	cfg := allInOneConfig(t, kafkatest.Fake(t), testenv.Prefix("kfake"), auth.ModeNone)
	app := startAllInOne(t, cfg)
	waitReady(t, app.base["gateway"]+"/readyz")
	askOverWebSocket(t, app.base["gateway"], "How do I start kchat?")

	// The lag is read when /metrics is scraped, once the groups have
	// committed: poll briefly.
	var missing []string
	var body string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		body = scrape(t, app.base["admin"]+"/metrics")
		families := dashboardFamilies(body)
		missing = missing[:0]
		for name, panels := range queried {
			if !dashboardExports(families, name) {
				missing = append(missing, name+" (panels: "+strings.Join(panels, "; ")+")")
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("%s queries %s, which no kchat service exports", dashboardFile, m)
	}

	// Each label a query groups by or matches on is one its metrics' series
	// have (job and instance: the labels Prometheus adds to a target's).
	labels := dashboardLabels(body)
	for _, q := range queries {
		for _, l := range q.labels {
			if l == "job" || l == "instance" {
				continue
			}
			if !slices.ContainsFunc(q.metrics, func(m string) bool { return labels[m][l] }) {
				t.Errorf("%s: panel %q: no series of %v has the label %s: %s", dashboardFile, q.panel, q.metrics, l, q.expr)
			}
		}
	}
}

// dashboardLabels maps each series name of a text exposition to the label
// names its samples carry.
func dashboardLabels(body string) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for line := range strings.SplitSeq(body, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		if out[name] == nil {
			out[name] = map[string]bool{}
		}
		if braces, _, ok := strings.Cut(rest, "} "); ok {
			for _, m := range labelName.FindAllStringSubmatch(braces, -1) {
				out[name][m[1]] = true
			}
		}
	}
	return out
}

// labelName is a label's name in a sample's braces: at their start or after
// a value's closing quote.
var labelName = regexp.MustCompile(`(?:^|",)([a-zA-Z_][a-zA-Z0-9_]*)="`)

// dashboardQuery is one panel query: its metrics and the labels it names.
type dashboardQuery struct {
	panel, expr     string
	metrics, labels []string
}

// dashboardMetrics maps each metric name the dashboard's queries select to
// the titles of the panels that query it, and lists the queries.
func dashboardMetrics(t *testing.T, file string) (map[string][]string, []dashboardQuery) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string  `json:"title"`
		Type    string  `json:"type"`
		Panels  []panel `json:"panels"` // a collapsed row's
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	}
	var d struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	out := map[string][]string{}
	var queries []dashboardQuery
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", file, p.Title)
			}
			for _, q := range p.Targets {
				names, labels := promqlParse(q.Expr)
				queries = append(queries, dashboardQuery{p.Title, q.Expr, names, labels})
				if len(names) == 0 {
					t.Errorf("%s: panel %q: no metric found in %q", file, p.Title, q.Expr)
				}
				for _, n := range names {
					if !slices.Contains(out[n], p.Title) {
						out[n] = append(out[n], p.Title)
					}
				}
			}
		}
	}
	walk(d.Panels)
	return out, queries
}

// dashboardFamilies reads the families a text exposition declares (its
// "# TYPE name type" lines): name to type.
func dashboardFamilies(body string) map[string]string {
	out := map[string]string{}
	for line := range strings.SplitSeq(body, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = f[3]
		}
	}
	return out
}

// dashboardExports reports whether series of the name are exported: a family of
// that name, or the _bucket, _sum or _count series of a histogram (_sum
// and _count: a summary's too).
func dashboardExports(families map[string]string, name string) bool {
	if _, ok := families[name]; ok {
		return true
	}
	for suffix, types := range map[string][]string{"_bucket": {"histogram"}, "_sum": {"histogram", "summary"}, "_count": {"histogram", "summary"}} {
		if base, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(types, families[base]) {
			return true
		}
	}
	return false
}

// PromQL words that are not metric names where an identifier stands
// without a "(" after it: the aggregation operators (sum by (x) (...)),
// the modifiers and binary operators, and the number literals.
var promqlWords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "and": true, "or": true, "unless": true, "atan2": true, "offset": true,
	"inf": true, "nan": true,
}

// promqlParse lists the metric names a PromQL expression selects and the
// label names it groups by or matches on, in order, each once. kchat's module graph has no PromQL parser
// (github.com/prometheus/prometheus/promql/parser would bring in
// Prometheus's whole server module), so this is a small lexer of the
// language's surface: it skips string literals, label matchers ({...};
// though a {__name__="x"} matcher names x), range and subquery durations
// ([...], which hold Grafana's $__rate_interval), Grafana's $variables,
// numbers and durations, and the label lists of by, without, on, ignoring,
// group_left and group_right; of the identifiers left, a function or an
// aggregation is followed by "(" or is an operator word, and every other
// one is a metric name.
func promqlParse(expr string) (metrics, labels []string) {
	add := func(n string) {
		if !slices.Contains(metrics, n) {
			metrics = append(metrics, n)
		}
	}
	label := func(n string) {
		if n != "__name__" && !slices.Contains(labels, n) {
			labels = append(labels, n)
		}
	}
	isStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isPart := func(c byte) bool { return isStart(c) || c >= '0' && c <= '9' }
	// skipString returns the index after the string literal at i.
	skipString := func(i int) int {
		q := expr[i]
		for i++; i < len(expr) && expr[i] != q; i++ {
			if expr[i] == '\\' && q != '`' {
				i++
			}
		}
		return i + 1
	}
	// skipTo returns the index after the close that ends the group at i
	// (an open bracket), string literals skipped.
	skipTo := func(i int, close byte) int {
		for i++; i < len(expr) && expr[i] != close; {
			if expr[i] == '"' || expr[i] == '\'' || expr[i] == '`' {
				i = skipString(i)
			} else {
				i++
			}
		}
		return i + 1
	}
	next := func(i int) int { // the first index at or after i that is not a space
		for i < len(expr) && strings.ContainsRune(" \t\r\n", rune(expr[i])) {
			i++
		}
		return i
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(i)
		case c == '{':
			end := skipTo(i, '}')
			braces := expr[i:min(end, len(expr))]
			if name := promqlNameMatcher(braces); name != "" {
				add(name)
			}
			for _, m := range matcherLabel.FindAllStringSubmatch(stringLiteral.ReplaceAllString(braces, `""`), -1) {
				label(m[1])
			}
			i = end
		case c == '[':
			i = skipTo(i, ']')
		case c == '$': // a Grafana variable: $name or ${name}
			i++
			if i < len(expr) && expr[i] == '{' {
				i = skipTo(i, '}')
			}
			for i < len(expr) && isPart(expr[i]) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.': // a number or a duration: 0.95, 1e3, 0x1f, 5m
			for i < len(expr) && (isPart(expr[i]) || expr[i] == '.') {
				i++
			}
		case isStart(c):
			start := i
			for i < len(expr) && isPart(expr[i]) {
				i++
			}
			word, after := expr[start:i], next(i)
			switch {
			case word == "by" || word == "without" || word == "on" || word == "ignoring" || word == "group_left" || word == "group_right":
				if after < len(expr) && expr[after] == '(' {
					end := skipTo(after, ')') // a list of label names
					for _, l := range strings.Split(expr[after+1:max(after+1, end-1)], ",") {
						if l = strings.Trim(strings.TrimSpace(l), `"`); l != "" {
							label(l)
						}
					}
					i = end
				}
			case after < len(expr) && expr[after] == '(':
				// a function or an aggregation: rate(, histogram_quantile(, sum(
			case promqlWords[strings.ToLower(word)]:
			default:
				add(word)
			}
		default:
			i++
		}
	}
	return metrics, labels
}

// In a label-matcher list: string literals (replaced by "" before the
// names are read, so a value cannot pass for a name) and a matcher's name.
var (
	stringLiteral = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	matcherLabel  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
)

// promqlNameMatcher is the metric name a label-matcher list selects with
// __name__="...", if any.
func promqlNameMatcher(braces string) string {
	_, rest, ok := strings.Cut(braces, "__name__")
	if !ok {
		return ""
	}
	rest = strings.TrimLeft(rest, " \t")
	if !strings.HasPrefix(rest, "=") || strings.HasPrefix(rest, "=~") {
		return ""
	}
	rest = strings.TrimLeft(rest[1:], " \t")
	if rest == "" || rest[0] != '"' && rest[0] != '\'' {
		return ""
	}
	end := strings.IndexByte(rest[1:], rest[0])
	if end < 0 {
		return ""
	}
	return rest[1 : end+1]
}

func TestPromQLParse(t *testing.T) {
	for _, tc := range []struct {
		expr           string
		metrics, label []string
	}{
		{`up`, []string{"up"}, nil},
		{`sum by (entry) (rate(kchat_gateway_questions_asked_total[$__rate_interval]))`, []string{"kchat_gateway_questions_asked_total"}, []string{"entry"}},
		{`histogram_quantile(0.95, sum by (hop, le) (rate(kchat_pipeline_hop_duration_seconds_bucket{hop="query_to_prompt"}[5m])))`, []string{"kchat_pipeline_hop_duration_seconds_bucket"}, []string{"hop", "le"}},
		{`sum(rate(a_total{code=~"5..", route="/sessions/{id}/history"}[1m])) by (service) / ignoring(code) group_left sum(rate(b_total[1m]))`, []string{"a_total", "b_total"}, []string{"code", "route", "service"}},
		{`sum without (partition) (max by (group, topic, partition) (kchat_kafka_consumer_group_lag_records))`, []string{"kchat_kafka_consumer_group_lag_records"}, []string{"partition", "group", "topic"}},
		{`x offset 5m > bool 1e3 and on(job) y unless z or count_values("v", w)`, []string{"x", "y", "z", "w"}, []string{"job"}},
		{`{__name__="by_name", job='a=b'} + rate(${var}[1m]) * inf`, []string{"by_name"}, []string{"job"}},
		{`max_over_time(deriv(m:rule:rate5m[10m:1m])[1h:])`, []string{"m:rule:rate5m"}, nil},
		{`topk(3, sum by (route) (rate(r_total{path!~"x=\"y"}[$__rate_interval]))) > $threshold`, []string{"r_total"}, []string{"route", "path"}},
	} {
		metrics, labels := promqlParse(tc.expr)
		if !slices.Equal(metrics, tc.metrics) || !slices.Equal(labels, tc.label) {
			t.Errorf("promqlParse(%q) = %q, %q; want %q, %q", tc.expr, metrics, labels, tc.metrics, tc.label)
		}
	}
}
