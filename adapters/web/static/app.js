// kchat web chat: one WebSocket to the gateway's /ws on the same origin
// (docs/design.md, "The WebSocket protocol").
//
// Text from the server or the user only ever reaches the page through text nodes
// (textContent, append(string)), never as HTML: answers quote documents and users.
// Answers are Markdown, rendered by markdown.js into DOM nodes the same way.
"use strict";

const KEY_SESSION = "kchat.session_id";
const KEY_AFTER = "kchat.after"; // message_id of the last answer shown, for resuming
const KEY_TOKEN = "kchat.access_token";
const KEY_ASKED = "kchat.asked"; // the session id once a question was asked in it

// A question's limit (domain.MaxMessageBytes) and a frame's (KCHAT_WS_MAX_FRAME's
// default): a larger question is refused here, with the reason, rather than
// sent to a server that must close the socket (1009) without saying which one.
const MAX_QUESTION_BYTES = 32 * 1024;
const MAX_FRAME_BYTES = 64 * 1024;
const utf8Length = (text) => new TextEncoder().encode(text).length;

const PING_EVERY_MS = 25000;
const BACKOFF_FIRST_MS = 1000;
const BACKOFF_MAX_MS = 15000;
// An answer whose reply_to is not known yet may simply have overtaken its ack.
const ORPHAN_WAIT_MS = 2000;

const byId = (id) => document.getElementById(id);
const ui = {
  messages: byId("messages"),
  composer: byId("composer"),
  question: byId("question"),
  send: byId("send"),
  status: byId("status"),
  newSession: byId("new-session"),
  token: byId("token"),
  sessionId: byId("session-id"),
};

// localStorage can be missing or throw (private modes, disabled storage): the chat
// then still works, it just cannot resume after a reload.
const store = {
  get(key) {
    try {
      return localStorage.getItem(key) || "";
    } catch {
      return "";
    }
  },
  set(key, value) {
    try {
      if (value) localStorage.setItem(key, value);
      else localStorage.removeItem(key);
    } catch {
      // see above
    }
  },
};

let ws = null; // the current socket; events of older sockets are ignored
let attempt = 0; // failed connections since the last session frame
let reconnectTimer = 0;
let pingTimer = 0;
let refSeq = 0;
let answerSeq = 0;

let byRef = new Map(); // client ref -> turn
let byQueryId = new Map(); // query message_id (from ack or history) -> turn
let shown = new Set(); // answer message_ids on the page: replays never duplicate
// Questions acknowledged and not answered yet: a reconnect names them
// (pending=), so a gateway other than the one that took them reads their
// answers (docs/design.md, "Answer routing").
let pendingIds = new Set();
let orphans = new Map(); // reply_to -> {frame, timer}
let outbox = []; // turns written while no socket was open

// ---- DOM helpers -------------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function scrollToEnd() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function systemNote(text, className = "note") {
  ui.messages.append(el("p", className, text));
  scrollToEnd();
}

function errorNode(code, message) {
  const box = el("div", "error");
  box.setAttribute("role", "alert");
  box.append(el("span", "error-code", code || "error"), " ", el("span", "error-message", message || ""));
  return box;
}

// ---- conversation model --------------------------------------------------------

// A turn is one question and (later) its answer, in one <article>.
function newTurn() {
  const node = el("article", "turn");
  ui.messages.append(node);
  return { node, text: "", ref: "", messageId: "", stateNode: null, retryNode: null, answered: false, socket: null, stream: null };
}

const STATE_TEXT = { sending: "sending…", sent: "sent", failed: "failed", unconfirmed: "not confirmed", elsewhere: "asked in another tab" };

function addQuestion(turn, text, state) {
  turn.text = text;
  const box = el("div", "question");
  box.append(el("p", "question-text", text));
  const meta = el("div", "question-meta");
  turn.stateNode = el("span", "state");
  turn.retryNode = el("button", "retry", "Retry");
  turn.retryNode.type = "button";
  turn.retryNode.hidden = true;
  turn.retryNode.addEventListener("click", () => retry(turn));
  meta.append(turn.stateNode, turn.retryNode);
  box.append(meta);
  turn.node.append(box);
  setState(turn, state);
}

function setState(turn, state) {
  if (!turn.stateNode) return;
  turn.state = state;
  turn.stateNode.dataset.state = state;
  turn.stateNode.textContent = STATE_TEXT[state] || state;
  turn.retryNode.hidden = !(state === "failed" || state === "unconfirmed");
}

function nextRef() {
  refSeq += 1;
  return `q-${Date.now().toString(36)}-${refSeq}`;
}

function ask(text) {
  const turn = newTurn();
  addQuestion(turn, text, "sending");
  turn.ref = nextRef();
  byRef.set(turn.ref, turn);
  if (!refuseTooLarge(turn)) sendQuery(turn);
  scrollToEnd();
}

// refuseTooLarge fails a question the server would refuse for its size, saying
// so, and reports whether it did.
function refuseTooLarge(turn) {
  const bytes = utf8Length(turn.text);
  const frameBytes = utf8Length(JSON.stringify({ type: "query", id: turn.ref, message: turn.text }));
  if (bytes <= MAX_QUESTION_BYTES && frameBytes <= MAX_FRAME_BYTES) return false;
  const kib = (n) => `${Math.ceil(n / 1024)} KiB`;
  setState(turn, "failed");
  turn.retryNode.hidden = true; // sending it again cannot help
  turn.node.append(
    errorNode(
      "too_large",
      bytes > MAX_QUESTION_BYTES
        ? `This question is ${kib(bytes)}; a question may be at most ${kib(MAX_QUESTION_BYTES)}. Shorten it and send it again.`
        : `This question takes ${kib(frameBytes)} once encoded; a message may be at most ${kib(MAX_FRAME_BYTES)}. Shorten it and send it again.`,
    ),
  );
  return true;
}

function sendQuery(turn) {
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({ type: "query", id: turn.ref, message: turn.text }));
    turn.socket = ws;
  } else {
    turn.socket = null;
    outbox.push(turn);
  }
}

function retry(turn) {
  byRef.delete(turn.ref);
  turn.ref = nextRef();
  byRef.set(turn.ref, turn);
  for (const node of turn.node.querySelectorAll(":scope > .error")) node.remove();
  setState(turn, "sending");
  sendQuery(turn);
}

function flushOutbox() {
  const waiting = outbox;
  outbox = [];
  for (const turn of waiting) sendQuery(turn);
}

// Queries written to a socket that closed before their ack may or may not have
// reached Kafka: say so, and let the user decide to send them again.
function markUnconfirmed(socket) {
  for (const turn of byRef.values()) {
    if (turn.state === "sending" && turn.socket === socket) setState(turn, "unconfirmed");
  }
}

// A socket closed with 1009 was closed for a frame too large, one of the
// questions it carried: the server read none of them.
function markTooLarge(socket) {
  for (const turn of byRef.values()) {
    if (turn.state === "sending" && turn.socket === socket) {
      setState(turn, "failed");
      turn.node.append(errorNode("too_large", "The server closed the connection: this message was larger than it accepts. Shorten it and send it again."));
    }
  }
}

// ---- answers and citations -----------------------------------------------------

const MARKER = /\[(\d+(?:\s*,\s*\d+)*)\]/g;

// appendWithMarkers writes text into parent, turning [n] (and [n, m]) markers that
// name a known citation into superscript links to it, numbered as the list shows
// it (targets: the answer's n -> {item, shown}).
function appendWithMarkers(parent, text, targets) {
  let last = 0;
  for (const match of text.matchAll(MARKER)) {
    const numbers = match[1].split(",").map((s) => Number(s.trim()));
    if (!numbers.every((n) => targets.has(n))) continue;
    parent.append(text.slice(last, match.index));
    for (const n of numbers) {
      const { item, shown } = targets.get(n);
      const sup = el("sup", "cite-ref");
      const link = el("a", "", `[${shown}]`);
      link.href = `#${item.id}`;
      link.addEventListener("click", () => {
        const details = item.querySelector("details");
        if (details) details.open = true;
      });
      sup.append(link);
      parent.append(sup);
    }
    last = match.index + match[0].length;
  }
  parent.append(text.slice(last));
}

function renderAnswer(turn, messageId, text, citations) {
  if (turn && turn.messageId) pendingIds.delete(turn.messageId);
  answerSeq += 1;
  // The final answer replaces whatever its deltas showed.
  if (turn.stream) {
    turn.stream.box.remove();
    turn.stream = null;
  }
  const box = el("div", "answer");
  if (messageId) box.dataset.messageId = messageId;

  // The list is numbered 1, 2, 3… whatever numbers the answer gave its passages
  // (it cites only some of those it was given: [1] and [3], say), and the
  // markers in the text follow.
  const targets = new Map(); // the answer's n -> {item: <li>, shown: its number here}
  const list = el("ol", "citations");
  (Array.isArray(citations) ? citations : []).forEach((c, i) => {
    if (!c || typeof c !== "object") return;
    const n = Number.isInteger(c.n) ? c.n : i + 1;
    if (targets.has(n)) return;
    const shown = targets.size + 1;
    const item = el("li", "citation");
    item.value = shown;
    item.id = `a${answerSeq}-cite-${shown}`;
    const details = el("details");
    const summary = el("summary");
    summary.append(el("span", "cite-source", String(c.source || "")));
    if (c.title) summary.append(el("span", "cite-sep", " › "), el("span", "cite-title", String(c.title)));
    details.append(summary);
    if (c.snippet) details.append(el("p", "cite-snippet", String(c.snippet)));
    item.append(details);
    list.append(item);
    targets.set(n, { item, shown });
  });

  const body = el("div", "answer-text");
  kchatMarkdown.render(body, String(text || ""), (parent, run) => appendWithMarkers(parent, run, targets));
  box.append(body);
  if (targets.size > 0) {
    box.append(el("p", "citations-title", "Sources"));
    box.append(list);
  }
  turn.node.append(box);
  turn.answered = true;
  if (messageId) shown.add(messageId);
  scrollToEnd();
}

// ---- answers as they are written (answer_delta) ---------------------------------

// A turn's stream is the text of one attempt of its answer, shown as it grows
// with a typing state, until the final answer replaces it. Deltas are taken only
// in order (seq 0 of a greater attempt starts the text again, then seq n+1):
// the gateway sends nothing else, and the page does not trust that it did.
function onAnswerDelta(frame) {
  const turn = byQueryId.get(frame.reply_to);
  if (!turn || turn.answered) return;
  const attempt = Number(frame.attempt);
  const seq = Number(frame.seq);
  const text = typeof frame.text === "string" ? frame.text : "";
  if (!Number.isFinite(attempt) || !Number.isInteger(seq)) return;
  let stream = turn.stream;
  if (seq === 0 && (!stream || attempt > stream.attempt)) {
    if (!stream) {
      stream = { box: el("div", "answer-stream streaming"), body: el("div", "answer-text"), attempt, next: 0, text: "", socket: ws };
      stream.box.setAttribute("aria-busy", "true");
      const typing = el("p", "typing", "typing…");
      typing.setAttribute("aria-live", "polite");
      stream.box.append(stream.body, typing);
      turn.node.append(stream.box);
      turn.stream = stream;
    }
    stream.attempt = attempt;
    stream.next = 0;
    stream.text = ""; // a new attempt: the old one's text goes
  }
  if (!stream || attempt !== stream.attempt || seq !== stream.next || stream.interrupted) return;
  stream.next += 1;
  stream.text += text;
  stream.socket = ws;
  const body = el("div", "answer-text");
  kchatMarkdown.render(body, stream.text, (parent, run) => parent.append(run));
  stream.body.replaceWith(body);
  stream.body = body;
  scrollToEnd();
}

// A socket that closes mid-stream leaves a half answer: say so on it. The final
// answer replaces it once the page has resumed (the history holds it).
function interruptStreams(socket) {
  for (const turn of byQueryId.values()) {
    const stream = turn.stream;
    if (!stream || turn.answered || stream.socket !== socket || stream.interrupted) continue;
    stream.interrupted = true;
    stream.box.classList.replace("streaming", "interrupted");
    stream.box.removeAttribute("aria-busy");
    stream.box.querySelector(".typing")?.remove();
    stream.box.append(
      errorNode("interrupted", "The connection closed while this answer was being written: the text above is incomplete. The full answer will show here once the page reconnects."),
    );
  }
}

function rememberAnswer(messageId) {
  if (messageId) store.set(KEY_AFTER, messageId);
}

function onAnswer(frame) {
  if (frame.message_id && shown.has(frame.message_id)) return;
  const turn = byQueryId.get(frame.reply_to);
  if (!turn) {
    // Its question was asked elsewhere and did not reach this page (a tab
    // connected to another gateway replica hears of it only from the history):
    // unless it shows up, resume to read both turns from the history. The
    // answer is not remembered as seen, so the resume asks for it again.
    if (!orphans.has(frame.reply_to)) {
      const timer = setTimeout(() => {
        orphans.delete(frame.reply_to);
        resync(frame);
      }, ORPHAN_WAIT_MS);
      orphans.set(frame.reply_to, { frame, timer });
    }
    return;
  }
  renderAnswer(turn, frame.message_id, frame.message, frame.citations);
  rememberAnswer(frame.message_id);
}

// resync resumes the session after the last answer shown, so the history brings
// the question of an answer that came alone; the answer is shown alone only if
// the history does not bring it either.
let resyncing = []; // answer frames waiting for the history
function resync(frame) {
  resyncing.push(frame);
  if (resyncing.length === 1) reconnectNow();
}

function afterResync() {
  const waiting = resyncing;
  resyncing = [];
  for (const f of waiting) {
    if (f.message_id && shown.has(f.message_id)) continue;
    renderAnswer(byQueryId.get(f.reply_to) || newTurn(), f.message_id, f.message, f.citations);
    rememberAnswer(f.message_id);
  }
}

// adoptOrphan shows an answer that arrived before its question's turn existed.
function adoptOrphan(turn, queryId) {
  const early = orphans.get(queryId);
  if (early) {
    clearTimeout(early.timer);
    orphans.delete(queryId);
    renderAnswer(turn, early.frame.message_id, early.frame.message, early.frame.citations);
    rememberAnswer(early.frame.message_id);
  }
}

function onAck(frame) {
  const turn = byRef.get(frame.id);
  if (!turn) return;
  turn.messageId = frame.message_id;
  byQueryId.set(frame.message_id, turn);
  pendingIds.add(frame.message_id);
  setState(turn, "sent");
  store.set(KEY_ASKED, store.get(KEY_SESSION));
  adoptOrphan(turn, frame.message_id);
}

// A question asked in this session elsewhere (another tab, POST /chat): shown as
// this page's own, so its answer has its question.
function onQuestion(frame) {
  if (!frame.message_id || byQueryId.has(frame.message_id)) return;
  const turn = newTurn();
  addQuestion(turn, String(frame.message || ""), "elsewhere");
  turn.messageId = frame.message_id;
  byQueryId.set(frame.message_id, turn);
  store.set(KEY_ASKED, store.get(KEY_SESSION));
  adoptOrphan(turn, frame.message_id);
  scrollToEnd();
}

// History lists the conversation so far. Turns already on the page (a reconnect
// within the same page) are skipped, so it can be rendered any number of times.
function onHistory(frame) {
  if (frame.unknown) {
    onUnknownSession();
    afterResync();
    return;
  }
  let lastUser = null;
  for (const t of Array.isArray(frame.turns) ? frame.turns : []) {
    if (!t) continue;
    if (t.role === "user") {
      lastUser = byQueryId.get(t.message_id) || adoptUnconfirmed(t) || null;
      if (!lastUser) {
        lastUser = newTurn();
        addQuestion(lastUser, String(t.text || ""), "sent");
        lastUser.messageId = t.message_id || "";
        if (t.message_id) byQueryId.set(t.message_id, lastUser);
      }
    } else if (t.role === "assistant") {
      if (t.message_id && shown.has(t.message_id)) continue;
      let turn = t.reply_to ? byQueryId.get(t.reply_to) : null;
      if (!turn) turn = lastUser && !lastUser.answered ? lastUser : newTurn();
      renderAnswer(turn, t.message_id, t.text, t.citations);
      rememberAnswer(t.message_id);
    }
  }
  if (lastUser) store.set(KEY_ASKED, store.get(KEY_SESSION));
  afterResync();
  scrollToEnd();
}

// The gateway does not know the session this page resumed. Nothing lost when
// nothing was asked in it; otherwise its conversation is gone from the server
// (an in-memory session store restarted, or the session expired): say so, rather
// than show an empty conversation as if it had never been. New questions go on
// in the same session.
function onUnknownSession() {
  const session = store.get(KEY_SESSION);
  const hadTurns = (session && store.get(KEY_ASKED) === session) || store.get(KEY_AFTER) !== "";
  store.set(KEY_AFTER, "");
  store.set(KEY_ASKED, "");
  if (!hadTurns) return;
  systemNote(
    "The server no longer has this conversation (it restarted without keeping sessions, or the session expired): " +
      "its earlier questions and answers are lost there. New questions start it again.",
    "note lost",
  );
}

// A question that got no ack before its socket closed may still have arrived:
// when the history shows it, the turn on the page is that question.
function adoptUnconfirmed(t) {
  for (const turn of byRef.values()) {
    if (!turn.messageId && turn.state === "unconfirmed" && turn.text === t.text) {
      turn.messageId = t.message_id || "";
      if (t.message_id) byQueryId.set(t.message_id, turn);
      setState(turn, "sent");
      return turn;
    }
  }
  return null;
}

function onSession(frame) {
  const previous = store.get(KEY_SESSION);
  if (previous && frame.session_id && previous !== frame.session_id) {
    // The gateway did not resume the stored conversation (expired or deleted).
    store.set(KEY_AFTER, "");
    systemNote("The previous conversation has ended; this is a new one.");
  }
  store.set(KEY_SESSION, frame.session_id || "");
  ui.sessionId.textContent = frame.session_id || "none";
  ui.sessionId.title = frame.user_id ? `user ${frame.user_id}` : "";
  attempt = 0;
}

function onError(frame) {
  const box = errorNode(frame.code, frame.message);
  const turn = frame.id ? byRef.get(frame.id) : null;
  if (turn) {
    setState(turn, "failed");
    turn.node.append(box);
  } else {
    ui.messages.append(box);
  }
  // The stored session belongs to another user (another token): forget it, so the
  // next connection starts a conversation of this user's own.
  if (!frame.id && frame.code === "forbidden") {
    store.set(KEY_SESSION, "");
    store.set(KEY_AFTER, "");
  }
  scrollToEnd();
}

function onFrame(frame) {
  switch (frame.type) {
    case "session":
      onSession(frame);
      connectedOnce = true;
      break;
    case "history":
      onHistory(frame);
      break;
    case "ack":
      onAck(frame);
      break;
    case "answer_delta":
      onAnswerDelta(frame);
      break;
    case "answer":
      onAnswer(frame);
      break;
    case "question":
      onQuestion(frame);
      break;
    case "error":
      onError(frame);
      break;
    default:
      // pong and frames of later versions: nothing to show
      break;
  }
}

// ---- connection ----------------------------------------------------------------

function setStatus(state, text) {
  ui.status.dataset.state = state;
  ui.status.textContent = text || state;
}

let connectedOnce = false; // a session frame arrived since this page loaded
let toldUnauthorized = false; // the page said so once; a new token resets it

function socketURL() {
  // Relative to the page, so a gateway behind a path prefix works too.
  const url = new URL("ws", window.location.href);
  url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
  url.search = "";
  url.hash = "";
  const session = store.get(KEY_SESSION);
  if (session) {
    url.searchParams.set("session_id", session);
    // A fresh page load asks for the whole conversation; a reconnect only
    // for what it missed.
    const after = store.get(KEY_AFTER);
    if (after && connectedOnce) url.searchParams.set("after", after);
    if (connectedOnce && pendingIds.size > 0) url.searchParams.set("pending", [...pendingIds].slice(-16).join(","));
  }
  const token = store.get(KEY_TOKEN);
  if (token) url.searchParams.set("access_token", token);
  return url.href;
}

function connect() {
  clearTimeout(reconnectTimer);
  reconnectTimer = 0;
  setStatus(attempt === 0 ? "connecting" : "reconnecting", attempt === 0 ? "connecting…" : "reconnecting…");
  let socket;
  try {
    socket = new WebSocket(socketURL());
  } catch (err) {
    ws = null;
    scheduleReconnect();
    return;
  }
  ws = socket;
  let opened = false;
  socket.addEventListener("open", () => {
    if (ws !== socket) return;
    opened = true;
    setStatus("connected");
    startPing(socket);
    flushOutbox();
  });
  socket.addEventListener("message", (event) => {
    if (ws !== socket) return;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (frame && typeof frame === "object") onFrame(frame);
  });
  socket.addEventListener("close", (event) => {
    if (ws !== socket) return;
    ws = null;
    stopPing();
    if (event.code === 1009) markTooLarge(socket);
    markUnconfirmed(socket);
    interruptStreams(socket);
    if (opened) scheduleReconnect();
    else afterRefusal(socket.url);
  });
}

// A socket that never opened was refused, or found no server: scripts are not told
// the handshake's status, so the same URL is asked over plain HTTP (the gateway
// answers it as it answered the handshake, without opening anything).
async function refusalStatus(socketHref) {
  try {
    const url = new URL(socketHref);
    url.protocol = url.protocol === "wss:" ? "https:" : "http:";
    const res = await fetch(url, { cache: "no-store", credentials: "same-origin" });
    return res.status;
  } catch {
    return 0;
  }
}

async function afterRefusal(socketHref) {
  const status = await refusalStatus(socketHref);
  if (ws) return; // a newer connection is under way
  if (status === 403 && store.get(KEY_SESSION)) {
    // The stored conversation is not this visitor's (another token, or an identity
    // cookie that is gone): start a new one rather than knock on it forever.
    store.set(KEY_SESSION, "");
    store.set(KEY_AFTER, "");
    systemNote("The previous conversation belongs to another identity; this is a new one.");
    attempt = 0;
    connect();
    return;
  }
  if (status === 401 && !toldUnauthorized) {
    toldUnauthorized = true;
    systemNote("Not signed in: set an access token under Settings.", "error");
  }
  scheduleReconnect();
}

function scheduleReconnect() {
  const delay = Math.min(BACKOFF_FIRST_MS * 2 ** attempt, BACKOFF_MAX_MS);
  attempt += 1;
  setStatus("reconnecting", `reconnecting in ${Math.round(delay / 1000)} s…`);
  clearTimeout(reconnectTimer);
  reconnectTimer = setTimeout(connect, delay);
}

// reconnectNow drops the current socket (if any) and connects again at once.
function reconnectNow() {
  const old = ws;
  ws = null;
  stopPing();
  if (old) {
    markUnconfirmed(old);
    interruptStreams(old);
    old.close(1000, "reconnect");
  }
  attempt = 0;
  connect();
}

function startPing(socket) {
  stopPing();
  pingTimer = setInterval(() => {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
  }, PING_EVERY_MS);
}

function stopPing() {
  clearInterval(pingTimer);
  pingTimer = 0;
}

function newConversation() {
  store.set(KEY_SESSION, "");
  store.set(KEY_AFTER, "");
  store.set(KEY_ASKED, "");
  resyncing = [];
  for (const o of orphans.values()) clearTimeout(o.timer);
  byRef = new Map();
  byQueryId = new Map();
  shown = new Set();
  orphans = new Map();
  outbox = [];
  ui.messages.replaceChildren();
  ui.sessionId.textContent = "none";
  const old = ws;
  ws = null; // before close(): its close event must not schedule a reconnect
  stopPing();
  if (old) old.close(1000, "new conversation");
  attempt = 0;
  connect();
  ui.question.focus();
}

// ---- wiring --------------------------------------------------------------------

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.question.value.trim();
  if (!text) return;
  ui.question.value = "";
  ask(text);
  ui.question.focus();
});

ui.question.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.composer.requestSubmit();
  }
});

ui.newSession.addEventListener("click", newConversation);

ui.token.value = store.get(KEY_TOKEN);
ui.token.addEventListener("change", () => {
  store.set(KEY_TOKEN, ui.token.value.trim());
  toldUnauthorized = false;
  reconnectNow();
});

// Back online: no need to wait for the rest of the backoff.
window.addEventListener("online", () => {
  if (!ws) reconnectNow();
});

ui.sessionId.textContent = store.get(KEY_SESSION) || "none";
connect();
