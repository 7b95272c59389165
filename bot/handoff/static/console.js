/* Aftercare's agent console: the live handoff queue and the conversation an agent works on.
 *
 * Plain browser JavaScript, served from /agent under a strict CSP (no inline code or styles).
 * Everything from the server is put into the page with textContent, never as markup, so
 * nothing a customer writes can inject HTML. The queue arrives over server-sent events
 * (/agent/api/events); a `message` event naming the open conversation makes it re-read.
 */
'use strict';

(function () {
  const API = '/agent/api';
  const MAX_REPLY = 4000;
  const CHANNELS = {
    directline: 'Web Chat',
    webchat: 'Web Chat',
    msteams: 'Microsoft Teams',
    telephony: 'Phone',
    emulator: 'Emulator',
  };
  const STATUS = { queued: 'Waiting', with_agent: 'With you', bot: 'With the assistant', closed: 'Closed' };

  const state = {
    me: null, // {agent, name, csrf}
    queue: [],
    openId: null,
    record: null,
    canned: [],
    source: null,
    retryTimer: null,
    retryDelay: 2000,
    loadSeq: 0,
    reloadPending: false,
    loading: false,
    sending: false,
    finishing: false,
    drafts: new Map(), // conversation id -> unsent reply
    // The queue's index changes only when a handoff moves (queued, claimed, ended), so what
    // was said last in each conversation comes from reading its record: conversation id ->
    // {last: the last non-system line, length: lines in its log, news: unread customer lines}.
    details: new Map(),
    readUpTo: new Map(), // conversation id -> lines in its log when the agent last saw it
    fetching: new Set(),
    refetch: new Set(),
    noticeTimer: null,
  };

  const $ = (id) => document.getElementById(id);
  const els = {
    session: $('session'),
    live: $('live'),
    avatar: $('avatar'),
    signedInAs: $('signed-in-as'),
    signOut: $('sign-out'),
    signInView: $('sign-in-view'),
    signInForm: $('sign-in-form'),
    signInName: $('sign-in-name'),
    signInPassword: $('sign-in-password'),
    signInError: $('sign-in-error'),
    signInSubmit: $('sign-in-submit'),
    consoleView: $('console-view'),
    queue: $('queue'),
    queueCount: $('queue-count'),
    queueEmpty: $('queue-empty'),
    notice: $('notice'),
    placeholder: $('placeholder'),
    placeholderTitle: $('placeholder-title'),
    placeholderText: $('placeholder-text'),
    conversation: $('conversation'),
    convTitle: $('conv-title'),
    convSub: $('conv-sub'),
    convClaim: $('conv-claim'),
    handBack: $('hand-back'),
    closeChat: $('close-chat'),
    packet: $('packet'),
    transcript: $('transcript'),
    composerHint: $('composer-hint'),
    composer: $('composer'),
    canned: $('canned'),
    replyText: $('reply-text'),
    replySend: $('reply-send'),
    replyCount: $('reply-count'),
  };

  // -- small helpers ------------------------------------------------------------------------

  function el(tag, options, children) {
    const node = document.createElement(tag);
    const o = options || {};
    if (o.className) node.className = o.className;
    if (o.text !== undefined && o.text !== null) node.textContent = String(o.text);
    if (o.testid) node.dataset.testid = o.testid;
    if (o.title) node.title = o.title;
    if (o.attrs) {
      for (const [name, value] of Object.entries(o.attrs)) node.setAttribute(name, String(value));
    }
    for (const child of children || []) {
      if (child) node.append(child);
    }
    return node;
  }

  function conversationPath(id, action) {
    return `${API}/conversations/${encodeURIComponent(id)}${action ? '/' + action : ''}`;
  }

  function clock(seconds) {
    const date = new Date(seconds * 1000);
    const now = new Date();
    const time = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    if (date.toDateString() === now.toDateString()) return time;
    return `${date.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${time}`;
  }

  function fullTime(seconds) {
    return new Date(seconds * 1000).toLocaleString();
  }

  function waitedFor(seconds) {
    const elapsed = Math.max(0, Date.now() / 1000 - seconds);
    if (elapsed < 60) return 'under a minute';
    const minutes = Math.floor(elapsed / 60);
    if (minutes < 60) return `${minutes} min`;
    const hours = Math.floor(minutes / 60);
    if (hours < 24) return `${hours} h ${minutes % 60} min`;
    return `${Math.floor(hours / 24)} d ${hours % 24} h`;
  }

  function initials(name) {
    const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
    return parts.slice(0, 2).map((part) => part[0].toUpperCase()).join('') || '?';
  }

  function customerName(value) {
    return value && String(value).trim() ? String(value) : 'Unverified customer';
  }

  function parse(data) {
    try {
      return JSON.parse(data);
    } catch (err) {
      console.warn('unreadable event', err);
      return null;
    }
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(method, path, body) {
    const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (method !== 'GET') {
      init.headers['Content-Type'] = 'application/json';
      if (state.me) init.headers['X-CSRF-Token'] = state.me.csrf;
      init.body = JSON.stringify(body || {});
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, 'The server could not be reached. Check the connection and try again.');
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      const message = (data && data.error && data.error.message) || `The server answered ${response.status}.`;
      throw new ApiError(response.status, message);
    }
    return data;
  }

  function notify(message, kind) {
    els.notice.textContent = message;
    els.notice.className = `notice notice-${kind || 'error'}`;
    els.notice.hidden = false;
    clearTimeout(state.noticeTimer);
    state.noticeTimer = setTimeout(() => {
      els.notice.hidden = true;
    }, 7000);
  }

  /** Reports a failed request; a lost session sends the agent back to the sign-in form. */
  function failed(err, what) {
    if (err instanceof ApiError && err.status === 401 && state.me) {
      signedOut('Your session has ended. Please sign in again.');
      return;
    }
    notify(what ? `${what}: ${err.message}` : err.message);
  }

  // -- signing in and out ---------------------------------------------------------------------

  function showSignIn(message) {
    els.session.hidden = true;
    els.consoleView.hidden = true;
    els.signInView.hidden = false;
    els.signInError.hidden = !message;
    els.signInError.textContent = message || '';
    els.signInPassword.value = '';
    (els.signInName.value ? els.signInPassword : els.signInName).focus();
  }

  async function signIn(event) {
    event.preventDefault();
    const name = els.signInName.value.trim();
    const password = els.signInPassword.value;
    if (!name || !password) {
      els.signInError.textContent = 'Enter your name and your password.';
      els.signInError.hidden = false;
      return;
    }
    els.signInSubmit.disabled = true;
    els.signInError.hidden = true;
    try {
      state.me = await api('POST', `${API}/sign-in`, { name, password });
      els.signInPassword.value = '';
      startConsole();
    } catch (err) {
      const message =
        err.status === 401 ? 'That name or password is not right.' : err.message || 'Signing in failed.';
      els.signInError.textContent = message;
      els.signInError.hidden = false;
      els.signInPassword.select();
    } finally {
      els.signInSubmit.disabled = false;
    }
  }

  async function signOut() {
    els.signOut.disabled = true;
    try {
      await api('POST', `${API}/sign-out`);
    } catch (err) {
      if (err.status !== 401) {
        failed(err, 'Signing out failed');
        els.signOut.disabled = false;
        return;
      }
    }
    els.signOut.disabled = false;
    signedOut('');
  }

  function signedOut(message) {
    disconnect();
    state.me = null;
    state.queue = [];
    state.openId = null;
    state.record = null;
    state.drafts.clear();
    state.details.clear();
    state.readUpTo.clear();
    els.queue.replaceChildren();
    showPlaceholder('No conversation open', 'Pick a customer from the queue to read their chat and take it over.');
    document.title = 'Agent console · Aftercare';
    showSignIn(message);
  }

  function startConsole() {
    els.signInView.hidden = true;
    els.consoleView.hidden = false;
    els.session.hidden = false;
    els.signedInAs.textContent = state.me.name || state.me.agent;
    els.avatar.textContent = initials(state.me.name || state.me.agent);
    showPlaceholder('No conversation open', 'Pick a customer from the queue to read their chat and take it over.');
    renderQueue();
    loadCanned();
    connect();
  }

  async function loadCanned() {
    try {
      const data = await api('GET', `${API}/canned`);
      state.canned = Array.isArray(data.canned) ? data.canned : [];
    } catch (err) {
      state.canned = [];
      if (err.status === 401) {
        failed(err);
        return;
      }
    }
    const first = els.canned.options[0];
    els.canned.replaceChildren(first);
    state.canned.forEach((item, index) => {
      els.canned.append(el('option', { text: item.title, title: item.text, attrs: { value: String(index) } }));
    });
    els.canned.disabled = state.canned.length === 0;
  }

  // -- the live event stream -----------------------------------------------------------------

  function setLive(mode) {
    els.live.dataset.state = mode;
    els.live.textContent = { live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…' }[mode];
  }

  function connect() {
    disconnect();
    setLive('connecting');
    const source = new EventSource(`${API}/events`);
    let first = true;
    state.source = source;
    source.addEventListener('queue', (event) => {
      if (state.source !== source) return;
      const data = parse(event.data);
      if (!data) return;
      state.retryDelay = 2000;
      setLive('live');
      state.queue = Array.isArray(data.queue) ? data.queue : [];
      followQueue();
      renderQueue();
      if (first && state.openId) {
        loadConversation(); // after a reconnect: whatever was missed
      } else {
        followOpen();
      }
      first = false;
    });
    source.addEventListener('message', (event) => {
      if (state.source !== source) return;
      const data = parse(event.data);
      if (!data || !data.conversation_id) return;
      if (data.conversation_id === state.openId) loadConversation();
      else if (state.queue.some((entry) => entry.conversation_id === data.conversation_id)) {
        fetchDetails(data.conversation_id);
      }
    });
    source.addEventListener('error', () => {
      if (state.source !== source) return;
      setLive('reconnecting');
      first = true;
      if (source.readyState === EventSource.CLOSED) recover(source);
      // Otherwise the browser reconnects by itself.
    });
  }

  /** The stream was refused (a lost session, a restart): check the session, then retry. */
  function recover(source) {
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(async () => {
      if (state.source !== source) return;
      try {
        state.me = await api('GET', `${API}/me`);
        connect();
      } catch (err) {
        if (err.status === 401) {
          signedOut('Your session has ended. Please sign in again.');
          return;
        }
        state.retryDelay = Math.min(state.retryDelay * 2, 30000);
        recover(source);
      }
    }, state.retryDelay);
  }

  function disconnect() {
    clearTimeout(state.retryTimer);
    if (state.source) state.source.close();
    state.source = null;
  }

  // -- the queue -----------------------------------------------------------------------------

  function mine(entry) {
    return entry.status === 'with_agent' && state.me && entry.agent === state.me.agent;
  }

  function renderQueue() {
    const entries = [...state.queue].sort(
      (a, b) => Number(!mine(a)) - Number(!mine(b)) || a.queued_at - b.queued_at,
    );
    els.queue.replaceChildren(...entries.map(queueItem));
    const waiting = state.queue.filter((entry) => entry.status === 'queued').length;
    els.queueCount.textContent = `${waiting} waiting`;
    els.queueCount.dataset.waiting = waiting > 0 ? 'yes' : 'no';
    els.queueEmpty.hidden = entries.length > 0;
    if (state.me) document.title = `${waiting ? `(${waiting}) ` : ''}Agent console · Aftercare`;
  }

  function queueItem(entry) {
    const id = entry.conversation_id;
    const held = mine(entry);
    const details = state.details.get(id);
    const news = id !== state.openId && Boolean(details && details.news);
    const classes = ['queue-item', held ? 'is-mine' : 'is-waiting'];
    if (id === state.openId) classes.push('is-open');
    if (news) classes.push('has-news');

    const name = customerName(entry.customer_name);
    const open = el('button', { className: 'queue-open', attrs: { type: 'button' } }, [
      el('span', { className: 'queue-row' }, [
        el('span', { className: 'queue-name', text: name }),
        el('span', {
          className: 'queue-wait',
          text: waitedFor(entry.queued_at),
          title: `Asked for a person at ${fullTime(entry.queued_at)}`,
          attrs: { 'data-since': entry.queued_at },
        }),
      ]),
      el('span', { className: 'queue-reason', text: entry.reason || 'Asked for a person' }),
      lastLine(entry, details, held),
      el('span', { className: 'queue-row queue-foot' }, [
        el('span', {
          className: `badge ${held ? 'badge-mine' : 'badge-waiting'}`,
          text: held ? 'With you' : 'Waiting',
        }),
        el('span', { className: 'queue-channel', text: CHANNELS[entry.channel_id] || entry.channel_id || '' }),
        news ? el('span', { className: 'news-dot', text: 'New message' }) : null,
      ]),
    ]);
    open.addEventListener('click', () => openConversation(id));

    const item = el('li', { className: classes.join(' '), testid: 'queue-item' }, [open]);
    item.dataset.conversationId = id;
    item.dataset.status = entry.status;
    if (entry.status === 'queued') {
      const claimButton = el('button', {
        className: 'btn btn-primary btn-small queue-claim',
        text: 'Claim',
        testid: 'claim',
        attrs: { type: 'button', 'aria-label': `Claim the chat with ${name}` },
      });
      claimButton.addEventListener('click', (event) => {
        event.stopPropagation();
        claim(id, claimButton);
      });
      item.append(claimButton);
    }
    return item;
  }

  function lastLine(entry, details, held) {
    const last = details && details.last;
    if (!last) {
      return el('span', { className: 'queue-last is-system', text: entry.last_text || 'No messages yet' });
    }
    let who = 'Assistant';
    if (last.role === 'customer') who = 'Customer';
    if (last.role === 'agent') who = held ? 'You' : last.name || 'Agent';
    return el('span', { className: `queue-last from-${last.role}` }, [
      el('span', { className: 'queue-last-who', text: `${who}: ` }),
      el('span', { text: last.text }),
    ]);
  }

  /** Remembers what a conversation's record says last; `viewing`: the agent has it open. */
  function noteRecord(record, viewing) {
    const id = record.conversation_id;
    const log = Array.isArray(record.log) ? record.log : [];
    const spoken = log.filter((line) => line.role !== 'system');
    const readUpTo = state.readUpTo.get(id);
    if (viewing) state.readUpTo.set(id, log.length);
    const news =
      !viewing && readUpTo !== undefined && log.slice(readUpTo).some((line) => line.role === 'customer');
    state.details.set(id, { last: spoken[spoken.length - 1] || null, length: log.length, news });
  }

  /** Reads a conversation in the queue that is not open, for its last line; one read at a time each. */
  async function fetchDetails(id) {
    if (state.fetching.has(id)) {
      state.refetch.add(id);
      return;
    }
    state.fetching.add(id);
    state.refetch.delete(id);
    try {
      const record = await api('GET', conversationPath(id));
      if (id !== state.openId && state.queue.some((entry) => entry.conversation_id === id)) {
        noteRecord(record, false);
        renderQueue();
      }
    } catch (err) {
      if (err.status === 401) failed(err); // 403 / 404: it left this agent's queue; the stream says so
    } finally {
      state.fetching.delete(id);
      if (state.refetch.has(id) && state.me) fetchDetails(id);
    }
  }

  /** The queue changed: read the conversations not read yet, forget those that left it. */
  function followQueue() {
    const ids = new Set(state.queue.map((entry) => entry.conversation_id));
    for (const id of [...state.details.keys()]) {
      if (!ids.has(id)) {
        state.details.delete(id);
        state.readUpTo.delete(id);
      }
    }
    let reads = 0;
    for (const id of ids) {
      if (id !== state.openId && !state.details.has(id) && reads < 25) {
        reads += 1;
        fetchDetails(id);
      }
    }
  }

  function tickWaits() {
    for (const node of els.queue.querySelectorAll('.queue-wait[data-since]')) {
      node.textContent = waitedFor(Number(node.dataset.since));
    }
    if (state.record) els.convSub.textContent = subtitle(state.record);
  }

  /** The queue moved: keep the open conversation in step with it. */
  function followOpen() {
    if (!state.openId || !state.record) return;
    const entry = state.queue.find((item) => item.conversation_id === state.openId);
    if (!entry || entry.status !== state.record.status || entry.agent !== state.record.agent) {
      loadConversation(); // it was taken, handed back or closed elsewhere: 403 / 404 say so
    }
  }

  // -- the open conversation ---------------------------------------------------------------------

  function showPlaceholder(title, text) {
    els.conversation.hidden = true;
    els.placeholder.hidden = false;
    els.placeholderTitle.textContent = title;
    els.placeholderText.textContent = text;
  }

  function leaveConversation(title, text) {
    saveDraft();
    state.openId = null;
    state.record = null;
    state.loadSeq += 1;
    els.transcript.replaceChildren();
    delete els.transcript.dataset.conversationId;
    showPlaceholder(title, text);
    renderQueue();
  }

  function openConversation(id) {
    if (state.openId !== id) {
      saveDraft();
      state.openId = id;
      state.record = null;
      els.replyText.value = state.drafts.get(id) || '';
      updateComposer();
    }
    renderQueue();
    loadConversation();
  }

  /** Reads the open conversation again; calls during a read coalesce into one more read. */
  async function loadConversation() {
    const id = state.openId;
    if (!id) return;
    if (state.loading) {
      state.reloadPending = true;
      return;
    }
    state.loading = true;
    state.reloadPending = false;
    const seq = ++state.loadSeq;
    try {
      const record = await api('GET', conversationPath(id));
      if (seq === state.loadSeq && id === state.openId) showRecord(record);
    } catch (err) {
      if (seq === state.loadSeq && id === state.openId) {
        if (err.status === 404) {
          leaveConversation('This conversation has ended', 'It was handed back to the assistant or closed.');
        } else if (err.status === 403) {
          leaveConversation('Another agent took this conversation', 'Pick another customer from the queue.');
        } else {
          failed(err, 'The conversation could not be loaded');
        }
      }
    } finally {
      state.loading = false;
      if (state.reloadPending && state.openId) loadConversation();
    }
  }

  function heldByMe(record) {
    return record.status === 'with_agent' && state.me && record.agent === state.me.agent;
  }

  function subtitle(record) {
    const channel = CHANNELS[record.channel_id] || record.channel_id;
    const parts = [];
    if (record.status === 'queued') {
      parts.push(`Waiting ${waitedFor(record.queued_at)}`);
    } else if (heldByMe(record) && record.claimed_at) {
      parts.push(`With you since ${clock(record.claimed_at)}`);
    } else {
      parts.push(STATUS[record.status] || record.status);
    }
    parts.push(`asked for a person at ${clock(record.queued_at)}`);
    if (channel) parts.push(channel);
    return parts.join(' · ');
  }

  function showRecord(record) {
    const firstShow = !state.record || state.record.conversation_id !== record.conversation_id;
    state.record = record;
    noteRecord(record, true);

    els.placeholder.hidden = true;
    els.conversation.hidden = false;
    els.conversation.dataset.conversationId = record.conversation_id;
    els.conversation.dataset.status = record.status;
    els.convTitle.textContent = customerName(record.packet.customer_name);
    els.convSub.textContent = subtitle(record);

    const held = heldByMe(record);
    els.convClaim.hidden = record.status !== 'queued';
    els.convClaim.disabled = false;
    els.handBack.hidden = !held;
    els.closeChat.hidden = !held;
    els.handBack.disabled = state.finishing;
    els.closeChat.disabled = state.finishing;

    renderPacket(record.packet);
    renderTranscript(record, firstShow);
    updateComposer();
    renderQueue();
  }

  function section(title, children, extraClass) {
    return el('section', { className: `packet-section ${extraClass || ''}`.trim() }, [
      el('h3', { text: title }),
      ...children,
    ]);
  }

  function list(items, emptyText, itemClass) {
    if (!items || items.length === 0) return el('p', { className: 'muted', text: emptyText });
    return el(
      'ul',
      { className: 'packet-list' },
      items.map((text) => el('li', { className: itemClass || '', text })),
    );
  }

  function renderPacket(packet) {
    const customer = el('dl', { className: 'facts' }, [
      el('dt', { text: 'Name' }),
      el('dd', { text: customerName(packet.customer_name), testid: 'packet-customer-name' }),
      el('dt', { text: 'Email' }),
      el('dd', { text: packet.customer_email || '—', testid: 'packet-customer-email' }),
      el('dt', { text: 'ID' }),
      el('dd', { className: 'mono', text: packet.customer_id || 'not verified', testid: 'packet-customer-id' }),
    ]);

    const orders = (packet.orders || []).map((order) =>
      el('li', { className: 'order', testid: 'packet-order' }, [
        el('div', { className: 'order-head' }, [
          el('span', { className: 'order-id mono', text: order.order_id }),
          el('span', { className: `badge badge-order status-${statusClass(order.status)}`, text: order.status }),
          el('span', { className: 'order-total', text: order.total }),
        ]),
        el(
          'ul',
          { className: 'order-items' },
          (order.items || []).map((item) => el('li', { text: item })),
        ),
      ]),
    );

    els.packet.replaceChildren(
      section('Why they want a person', [
        el('p', { className: 'packet-reason', text: packet.reason, testid: 'packet-reason' }),
        packet.trigger && packet.trigger !== packet.reason
          ? el('p', { className: 'muted small', text: `Trigger: ${packet.trigger}` })
          : null,
      ]),
      section('Summary', [el('p', { className: 'packet-summary', text: packet.summary, testid: 'packet-summary' })]),
      section('Customer', [customer]),
      section(`Orders${orders.length ? ` (${orders.length})` : ''}`, [
        orders.length
          ? el('ul', { className: 'orders' }, orders)
          : el('p', { className: 'muted', text: packet.customer_id ? 'No orders.' : 'Unknown until verified.' }),
      ]),
      section('Done by the assistant', [list(packet.actions_taken, 'Nothing yet.', 'action-taken')]),
      section('Refused or failed', [list(packet.actions_refused, 'Nothing.', 'action-refused')]),
    );
  }

  function statusClass(status) {
    return String(status || '')
      .toLowerCase()
      .replace(/[^a-z]+/g, '-')
      .replace(/^-|-$/g, '');
  }

  function renderTranscript(record, firstShow) {
    const box = els.transcript;
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    const customer = record.packet.customer_name || 'Customer';
    box.replaceChildren(...record.log.map((entry) => transcriptLine(entry, record, customer)));
    if (firstShow || nearBottom) box.scrollTop = box.scrollHeight;
  }

  function transcriptLine(entry, record, customer) {
    const role = ['customer', 'bot', 'agent', 'system'].includes(entry.role) ? entry.role : 'system';
    const time = el('time', {
      className: 'line-time',
      text: clock(entry.at),
      title: fullTime(entry.at),
      attrs: { datetime: new Date(entry.at * 1000).toISOString() },
    });
    const line = el('li', { className: `line line-${role}`, testid: 'transcript-line' });
    line.dataset.role = role;
    if (role === 'system') {
      line.append(el('span', { className: 'line-text', text: entry.text }), time);
      return line;
    }
    let who = customer;
    if (role === 'bot') who = 'Assistant';
    if (role === 'agent') {
      who = entry.name || 'Agent';
      if (state.me && record.agent === state.me.agent && who === state.me.name) who += ' (you)';
    }
    line.append(
      el('div', { className: 'line-meta' }, [el('span', { className: 'line-who', text: who }), time]),
      el('div', { className: 'line-text', text: entry.text }),
    );
    return line;
  }

  // -- claiming, replying, handing back, closing ------------------------------------------------

  async function claim(id, button) {
    if (button) button.disabled = true;
    try {
      const record = await api('POST', conversationPath(id, 'claim'));
      const entry = state.queue.find((item) => item.conversation_id === id);
      if (entry) {
        entry.status = 'with_agent';
        entry.agent = state.me.agent;
      }
      if (state.openId !== id) {
        saveDraft();
        state.openId = id;
        state.record = null;
        els.replyText.value = state.drafts.get(id) || '';
      }
      state.loadSeq += 1; // an older read in flight must not overwrite this
      showRecord(record);
      els.replyText.focus();
    } catch (err) {
      failed(err, 'Could not claim the conversation');
      if (button) button.disabled = false;
      if (err.status === 404 || err.status === 409) loadConversation();
    }
  }

  function updateComposer() {
    const record = state.record;
    const held = Boolean(record && heldByMe(record));
    els.composer.hidden = !held;
    els.composerHint.hidden = held || !record;
    if (record && !held) {
      els.composerHint.textContent =
        record.status === 'queued'
          ? 'Claim this conversation to reply. Until then the assistant keeps helping the customer.'
          : 'This conversation is not with you.';
    }
    const length = els.replyText.value.length;
    els.replySend.disabled = !held || state.sending || els.replyText.value.trim() === '';
    els.replyCount.textContent = length > MAX_REPLY - 500 ? `${length} / ${MAX_REPLY}` : '';
    autoGrow();
  }

  /** A longer reply gets a taller box (a class: the CSP allows no inline styles). */
  function autoGrow() {
    const box = els.replyText;
    if (!box.value) box.classList.remove('is-tall');
    else if (box.scrollHeight > box.clientHeight + 2 || box.value.split('\n').length > 2) {
      box.classList.add('is-tall');
    }
  }

  function saveDraft() {
    if (!state.openId) return;
    const text = els.replyText.value;
    if (text.trim()) state.drafts.set(state.openId, text);
    else state.drafts.delete(state.openId);
  }

  function insertText(text) {
    const box = els.replyText;
    const start = box.selectionStart ?? box.value.length;
    const end = box.selectionEnd ?? start;
    const before = box.value.slice(0, start);
    const after = box.value.slice(end);
    const gap = before && !/\s$/.test(before) ? ' ' : '';
    box.value = before + gap + text + after;
    const caret = before.length + gap.length + text.length;
    box.focus();
    box.setSelectionRange(caret, caret);
    saveDraft();
    updateComposer();
  }

  async function send() {
    const id = state.openId;
    const text = els.replyText.value.trim();
    if (!id || !text || state.sending || !state.record || !heldByMe(state.record)) return;
    state.sending = true;
    els.replyText.readOnly = true;
    updateComposer();
    try {
      await api('POST', conversationPath(id, 'messages'), { text });
      state.drafts.delete(id);
      if (state.openId === id) els.replyText.value = '';
      loadConversation();
    } catch (err) {
      failed(err, 'The message was not sent');
    } finally {
      state.sending = false;
      els.replyText.readOnly = false;
      updateComposer();
      if (state.openId === id) els.replyText.focus();
    }
  }

  async function finish(action) {
    const id = state.openId;
    if (!id || state.finishing) return;
    state.finishing = true;
    els.handBack.disabled = true;
    els.closeChat.disabled = true;
    try {
      await api('POST', conversationPath(id, action));
      state.queue = state.queue.filter((entry) => entry.conversation_id !== id);
      state.drafts.delete(id);
      state.details.delete(id);
      state.readUpTo.delete(id);
      if (state.openId === id) {
        els.replyText.value = '';
        if (action === 'close') {
          leaveConversation('Chat closed', 'The customer was asked to rate the help they got.');
        } else {
          leaveConversation('Handed back to the assistant', 'The assistant is helping the customer again.');
        }
      }
      renderQueue();
    } catch (err) {
      failed(err, action === 'close' ? 'Could not close the chat' : 'Could not hand the chat back');
      if (state.openId === id) loadConversation();
    } finally {
      state.finishing = false;
      els.handBack.disabled = false;
      els.closeChat.disabled = false;
    }
  }

  // -- wiring -------------------------------------------------------------------------------------

  els.signInForm.addEventListener('submit', signIn);
  els.signOut.addEventListener('click', signOut);
  els.convClaim.addEventListener('click', () => {
    if (state.openId) claim(state.openId, els.convClaim);
  });
  els.handBack.addEventListener('click', () => finish('hand-back'));
  els.closeChat.addEventListener('click', () => finish('close'));
  els.composer.addEventListener('submit', (event) => {
    event.preventDefault();
    send();
  });
  els.replyText.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  els.replyText.addEventListener('input', () => {
    saveDraft();
    updateComposer();
  });
  els.canned.addEventListener('change', () => {
    const item = state.canned[Number(els.canned.value)];
    els.canned.value = '';
    if (item) insertText(item.text);
  });
  setInterval(tickWaits, 15000);

  (async function boot() {
    try {
      state.me = await api('GET', `${API}/me`);
      startConsole();
    } catch (err) {
      showSignIn(err.status === 401 ? '' : err.message);
    }
  })();
})();
