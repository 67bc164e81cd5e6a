// Package llm is kchat's ports.Generator: it writes the answer to a prompt
// from the retrieved passages, citing them as [n]. Extractive (the default)
// needs no model: it quotes the passages' sentences that best match the
// question, deterministically and offline. OpenAI streams the answer from
// any OpenAI-compatible chat-completions endpoint. With
// KCHAT_GENERATOR=external no in-process generator exists: an outside
// service consumes the prompt topic and kchat's generate stage is off.
package llm
