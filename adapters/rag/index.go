package rag

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"
	index "github.com/blevesearch/bleve_index_api"

	"github.com/kchat/kchat/adapters/internal/thesaurus"
	"github.com/kchat/kchat/domain"
	"github.com/kchat/kchat/ports"
)

//go:embed kb
var defaultKB embed.FS

// MinScore is the BM25 score below which a passage that contains one of
// the question's words is not relevant; minScoreSeveral is the bar for a
// passage that contains two or more of them. Retrieve drops passages
// under their bar, so a question the knowledge base cannot answer ("what
// is the capital of France?") gets no passage at all.
//
// Passage.Score is bleve's raw BM25 score (k1=1.2, b=0.75) for the query's
// terms, each weighted by its share of the query's IDF (bleve's queryNorm)
// and the sum scaled by coord, the share of query terms the passage
// contains. A question whose rare words are absent from the knowledge base
// ("pizza", "Everest") thus scores low even where a common word ("best")
// matches. Scores grow with the knowledge base's size (IDF is larger in a
// larger corpus), so the threshold is calibrated on the embedded one
// (TestCalibration): the best passage of every one of the 51 eval questions
// scores at least 0.14, while the best passage of each off-topic question
// scores at most 0.091 and matches one word. Coord also sinks a long,
// chatty question that shares two or three words with the passage that
// answers it ("how long does an idle conversation stick around before
// it's thrown away?"), which is why a passage matching several of the
// question's words needs only minScoreSeveral (docs/quality.md, "Round
// 2"). Neither bar catches an off-topic question whose words occur in the
// knowledge base ("what time is it?" scores 0.56): a lexical index does
// not know what a question is about. Callers that want a stricter cut
// compare Passage.Score with their own bound.
const MinScore = 0.12

// minScoreSeveral is the bar of a passage that contains at least two of
// the question's (analysed) words.
const minScoreSeveral = 0.06

// maxQueryBytes bounds the text searched for: a 32 KiB question would
// otherwise become a query of thousands of terms.
const maxQueryBytes = 4096

// titleRepeat is how many times a passage's title is indexed ahead of its
// text: heading words weigh more, since a heading says what the whole
// passage is about. (A separate, boosted title field does worse: bleve
// normalises the weights over both fields' IDFs, so a word that is rare in
// titles crushes the body scores of every passage whose title lacks it.)
const titleRepeat = 2

// fieldBody is the one indexed field: title and text.
const fieldBody = "body"

// Index is a BM25 index over the passages of a knowledge base, built once
// and then only read: safe for concurrent use.
type Index struct {
	topK     int
	passages []domain.Passage // by document id (its position, in decimal)
	sources  []string
	idx      bleve.Index
}

var _ ports.Retriever = (*Index)(nil)

// New builds the index of cfg.Dir, or of the embedded knowledge base when
// cfg.Dir is empty. It fails when the directory holds no knowledge-base
// file.
func New(cfg Config) (*Index, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var kb fs.FS
	if cfg.Dir == "" {
		sub, err := fs.Sub(defaultKB, "kb")
		if err != nil {
			return nil, fmt.Errorf("embedded knowledge base: %w", err)
		}
		kb = sub
	} else {
		kb = os.DirFS(cfg.Dir)
	}
	synonyms := thesaurus.General
	if cfg.Dir == "" {
		synonyms = append(slices.Clone(thesaurus.General), thesaurus.KChat...)
	}
	ix, err := build(kb, synonyms)
	if err != nil {
		if cfg.Dir != "" {
			return nil, fmt.Errorf("KCHAT_KB_DIR %s: %w", cfg.Dir, err)
		}
		return nil, fmt.Errorf("embedded knowledge base: %w", err)
	}
	ix.topK = cfg.TopK
	return ix, nil
}

// build reads every knowledge-base file of kb, chunks it and indexes the
// passages.
func build(kb fs.FS, synonyms [][]string) (*Index, error) {
	ix := &Index{}
	err := fs.WalkDir(kb, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != "." {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !isKBFile(p) {
			return nil
		}
		b, err := fs.ReadFile(kb, p)
		if err != nil {
			return err
		}
		if !utf8.Valid(b) {
			return fmt.Errorf("%s is not UTF-8 text", p)
		}
		ix.sources = append(ix.sources, p)
		for _, c := range split(string(b), docTitle(p)) {
			ix.passages = append(ix.passages, domain.Passage{Source: p, Title: c.Title, Text: c.Text})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(ix.sources) == 0 {
		return nil, errors.New("no .md, .markdown or .txt file found")
	}

	m, err := indexMapping(synonyms)
	if err != nil {
		return nil, err
	}
	idx, err := bleve.NewUsing("", m, scorch.Name, scorch.Name, nil)
	if err != nil {
		return nil, fmt.Errorf("create index: %w", err)
	}
	batch := idx.NewBatch()
	for i, p := range ix.passages {
		doc := map[string]any{fieldBody: strings.Repeat(p.Title+"\n", titleRepeat) + "\n" + p.Text}
		if err := batch.Index(strconv.Itoa(i), doc); err != nil {
			_ = idx.Close()
			return nil, fmt.Errorf("index %s: %w", p.Source, err)
		}
	}
	if err := idx.Batch(batch); err != nil {
		_ = idx.Close()
		return nil, fmt.Errorf("index: %w", err)
	}
	ix.idx = idx
	return ix, nil
}

func isKBFile(p string) bool {
	switch strings.ToLower(path.Ext(p)) {
	case ".md", ".markdown", ".txt":
		return true
	}
	return false
}

// indexMapping analyses passages and questions with analyzerName over
// the thesaurus groups and scores with BM25. Nothing is stored: hits map
// back to passages by id.
func indexMapping(groups [][]string) (*mapping.IndexMappingImpl, error) {
	m := bleve.NewIndexMapping()
	if err := addAnalyzer(m, groups); err != nil {
		return nil, fmt.Errorf("analyser: %w", err)
	}
	body := bleve.NewTextFieldMapping()
	body.Analyzer = analyzerName
	body.Store = false
	body.IncludeInAll = false
	doc := bleve.NewDocumentStaticMapping()
	doc.AddFieldMappingsAt(fieldBody, body)
	m.DefaultMapping = doc
	m.DefaultAnalyzer = analyzerName
	m.ScoringModel = index.BM25Scoring
	return m, nil
}

// Retrieve returns up to k passages (cfg.TopK when k <= 0), best first,
// each with its raw BM25 score, leaving out those below MinScore. The
// words of q.Context count contextWeight times as much as the question's
// (a follow-up's earlier question helps find its topic without drowning
// what it asks). A query with no searchable word (only stop words or
// punctuation) or no relevant match gets an empty slice. Only the first
// 4 KiB of the question and of the context are searched. Errors: ctx's,
// or the index's (none expected in memory).
func (ix *Index) Retrieve(ctx context.Context, q domain.Query, k int) ([]domain.Passage, error) {
	return ix.search(ctx, q, k, MinScore)
}

// search is Retrieve with minScore in place of MinScore (0: no cut); a
// query with a context is searched by fuse, one without is ranked by file
// (byFile).
func (ix *Index) search(ctx context.Context, q domain.Query, k int, minScore float64) ([]domain.Passage, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if k <= 0 {
		k = ix.topK
	}
	k = min(k, MaxTopK)
	text := truncate(q.Text, maxQueryBytes)
	if strings.TrimSpace(text) == "" {
		return []domain.Passage{}, nil
	}
	context := truncate(q.Context, maxQueryBytes)
	if strings.TrimSpace(context) == "" {
		hits, err := ix.hits(ctx, text, candidates)
		if err != nil {
			return nil, err
		}
		return ix.passagesOf(ix.byFile(hits), k, minScore)
	}
	// A follow-up's fusion already weighs another search in: ranking it
	// by file too drowned follow-ups that move to another file.
	hits, err := ix.fuse(ctx, text, context)
	if err != nil {
		return nil, err
	}
	return ix.passagesOf(hits, k, minScore)
}

// hit is a passage (by its position) and its score; rank is what orders
// the hits (the score raised where the question's words stand together,
// and by its file's other matches, byFile).
type hit struct {
	doc         int
	score, rank float64
	terms       int // distinct question terms the passage contains
}

// hits searches the body for text: up to k hits, best first by rank
// (the score raised by proximity), each with how many of text's terms it
// contains.
func (ix *Index) hits(ctx context.Context, text string, k int) ([]hit, error) {
	req := bleve.NewSearchRequestOptions(matchBody(text), k, 0, false)
	req.IncludeLocations = true
	res, err := ix.idx.SearchInContext(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("rag search: %w", err)
	}
	out := make([]hit, 0, len(res.Hits))
	pairs := ix.questionPairs(text)
	for _, h := range res.Hits {
		i, err := strconv.Atoi(h.ID)
		if err != nil || i < 0 || i >= len(ix.passages) {
			return nil, fmt.Errorf("rag search: unknown document id %q", h.ID)
		}
		rank := h.Score * (1 + proximityWeight*proximity(pairs, h.Locations[fieldBody]))
		out = append(out, hit{doc: i, score: h.Score, rank: rank, terms: len(h.Locations[fieldBody])})
	}
	sortHits(out)
	return out, nil
}

// passagesOf returns the passages of the first k hits (best first, by
// rank) that clear their bar: minScore, or minScore's share of
// minScoreSeveral for a passage containing several question words.
func (ix *Index) passagesOf(hits []hit, k int, minScore float64) ([]domain.Passage, error) {
	out := make([]domain.Passage, 0, min(k, len(hits)))
	for _, h := range hits {
		if len(out) == k {
			break
		}
		bar := minScore
		if h.terms >= 2 {
			bar = minScore * minScoreSeveral / MinScore
		}
		if h.score < bar {
			continue
		}
		p := ix.passages[h.doc]
		p.Score = h.score
		out = append(out, p)
	}
	return out, nil
}

// matchBody is a match query for text on the body field.
func matchBody(text string) *query.MatchQuery {
	m := query.NewMatchQuery(text)
	m.SetField(fieldBody)
	return m
}

// Documents returns the sources of the knowledge base (paths relative to
// its root, slash-separated), sorted.
func (ix *Index) Documents() []string {
	out := slices.Clone(ix.sources)
	slices.Sort(out)
	return out
}

// Close releases the index. Retrieve must not be called afterwards.
func (ix *Index) Close() error {
	return ix.idx.Close()
}

// truncate cuts s to at most n bytes without splitting a rune.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
