package restclient_test

import (
	"context"
	"net/http"

	"github.com/kchat/kchat/adapters/restclient"
)

// The operations the gateway depends on, by the spec's operationIds
// (postMessage, sendMessage, getMessages): renaming or reshaping one in the
// producer or consumer breaks this file at compile time once the client is
// regenerated.
var (
	_ func(*restclient.Client, context.Context, *restclient.PostMessageParams, restclient.PostMessageJSONRequestBody, ...restclient.RequestEditorFn) (*http.Response, error) = (*restclient.Client).PostMessage
	_ func(*restclient.Client, context.Context, restclient.SendMessageJSONRequestBody, ...restclient.RequestEditorFn) (*http.Response, error)                                = (*restclient.Client).SendMessage
	_ func(*restclient.Client, context.Context, *restclient.GetMessagesParams, ...restclient.RequestEditorFn) (*http.Response, error)                                        = (*restclient.Client).GetMessages

	_ func(*restclient.ClientWithResponses, context.Context, *restclient.PostMessageParams, restclient.PostMessageJSONRequestBody, ...restclient.RequestEditorFn) (*restclient.PostMessageResponse, error) = (*restclient.ClientWithResponses).PostMessageWithResponse
	_ func(*restclient.ClientWithResponses, context.Context, restclient.SendMessageJSONRequestBody, ...restclient.RequestEditorFn) (*restclient.SendMessageResponse, error)                                = (*restclient.ClientWithResponses).SendMessageWithResponse
	_ func(*restclient.ClientWithResponses, context.Context, *restclient.GetMessagesParams, ...restclient.RequestEditorFn) (*restclient.GetMessagesResponse, error)                                        = (*restclient.ClientWithResponses).GetMessagesWithResponse
)
