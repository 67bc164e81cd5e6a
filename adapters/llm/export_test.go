package llm

// Message and RenderMessages let the external tests check the prompt the
// OpenAI generator sends without a server.
type Message = message

var RenderMessages = renderMessages
