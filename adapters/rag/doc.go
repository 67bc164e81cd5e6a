// Package rag is kchat's ports.Retriever: an in-memory BM25 index (bleve,
// scorch) over a knowledge base of Markdown and text files, chunked by
// heading and paragraph. Without KCHAT_KB_DIR it serves the knowledge base
// embedded in the binary: kchat's own user documentation.
package rag
