// nerve's read-only console: incidents, an incident's timeline, an agent's view, refreshed every 5 s.
// Everything shown comes from the read API and much of it from the watched agent (Falco output, session
// names): it is only ever put on the page as text (textContent), never as HTML, and the server's
// Content-Security-Policy allows no other script.
const view = document.getElementById('view')
const live = document.getElementById('live')
const tokenForm = document.getElementById('token-form')
const refreshMs = 5000
const incidentCorrelations = 100
let timer
let more = null

// Controls that text can hold but should never act on the page: C0 (but tab and line feed), DEL and C1, the
// bidirectional marks, embeddings, overrides and isolates (a right-to-left override makes `cat
// /tmp/<RLO>txt.hs` read "cat /tmp/hs.txt" and reverses what follows it), zero-width characters and the
// line and paragraph separators. Each is shown as its `\u` escape, as runtime/terminal-text.ts does.
const hiddenControls =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the controls are what it finds, to show them.
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g
const visible = (text) =>
  text.replace(hiddenControls, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)

/**
 * el('td', { class: 'x' }, 'text', child): attributes are set as attributes, children as text or nodes,
 * their hidden controls shown as escapes.
 */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value))
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue
    node.append(child instanceof Node ? child : document.createTextNode(visible(String(child))))
  }
  return node
}

const utc = (iso) => (iso ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}` : '')
const link = (hash, text) => el('a', { href: `#/${hash.map(encodeURIComponent).join('/')}` }, text)
const scoreCell = (score) => el('span', { class: score >= 70 ? 'score high' : 'score' }, String(score))
const statusOf = (revoke) => (revoke ? revoke.status : 'none')
const revokeText = (revoke) =>
  el('span', { class: `status-${statusOf(revoke)}` }, revoke ? `${revoke.status} (${revoke.reason})` : 'none')

async function api(path) {
  const headers = {}
  const token = sessionStorage.getItem('nerve-token')
  if (token) headers.authorization = `Bearer ${token}`
  const res = await fetch(path, { headers })
  if (res.status === 401) {
    tokenForm.hidden = false
    throw new Error('This server asks for a token: enter it above.')
  }
  const body = await res.json()
  if (!res.ok) throw new Error(body?.error?.message ?? `HTTP ${res.status}`)
  return body
}

tokenForm.addEventListener('submit', (event) => {
  event.preventDefault()
  sessionStorage.setItem('nerve-token', document.getElementById('token').value)
  tokenForm.hidden = true
  route()
})

function filtersFromHash() {
  const query = location.hash.split('?')[1] ?? ''
  return new URLSearchParams(query)
}

function filterForm(params) {
  const field = (name, label, type = 'text', extra = {}) =>
    el('label', {}, label, el('input', { name, type, value: params.get(name) ?? '', ...extra }))
  const form = el(
    'form',
    { class: 'filters' },
    field('agent', 'agent'),
    field('rule', 'rule (nerve or Falco)'),
    field('min_score', 'min score', 'number', { min: 0, max: 100 }),
    field('since', 'since (UTC, ISO 8601)', 'text', { placeholder: '2021-04-10T19:00:00Z' }),
    field('until', 'until (UTC, ISO 8601)'),
    el('button', { type: 'submit' }, 'Filter'),
  )
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    const next = new URLSearchParams()
    for (const [name, value] of new FormData(form))
      if (String(value).trim()) next.set(name, String(value).trim())
    location.hash = `#/?${next}`
  })
  return form
}

function incidentRows(items) {
  return items.map((i) => {
    const row = el(
      'tr',
      { class: 'row', 'data-incident': i.id },
      el('td', { class: 'mono', title: i.last_seen_iso }, utc(i.last_seen_iso)),
      el('td', {}, link(['agent', i.agent_id], i.agent_id)),
      el(
        'td',
        {},
        i.rules.map((r) => el('span', { class: 'tag rule' }, r)),
        i.falco_rules.map((r) => el('span', { class: 'tag falco' }, r)),
      ),
      el('td', { class: 'mono' }, i.actions.join(', ')),
      el('td', {}, scoreCell(i.max_score)),
      el('td', {}, revokeText(i.revoke)),
      el('td', {}, String(i.correlations)),
    )
    row.addEventListener('click', (event) => {
      if (event.target.closest('a')) return
      location.hash = `#/incident/${encodeURIComponent(i.id)}`
    })
    return row
  })
}

function incidentTable(items) {
  const head = ['last seen', 'agent', 'rules', 'CloudTrail actions', 'score', 'revoke', 'pairs']
  return el(
    'table',
    { id: 'incidents' },
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        head.map((h) => el('th', {}, h)),
      ),
    ),
    el('tbody', {}, incidentRows(items)),
  )
}

async function showIncidents(params, keepPages) {
  const query = new URLSearchParams(params)
  query.set('limit', '50')
  // A refresh keeps the older pages loaded (and asks nothing: its answer would be thrown away).
  if (keepPages && more) return
  const page = await api(`/v1/incidents?${query}`)
  if (keepPages && more) return
  more = null
  const table = incidentTable(page.items)
  const nodes = [el('h1', {}, `Incidents (${page.total})`), filterForm(params), table]
  if (page.items.length === 0) nodes.push(el('p', { class: 'muted' }, 'No incident matches.'))
  if (page.next) nodes.push(loadMore(query, page.next, table))
  view.replaceChildren(...nodes)
}

/**
 * A button that appends the page after `cursor` (`next` fetches and appends it, and says the cursor after
 * it, if any), disabled while that page is being fetched: a double click asked twice with the same cursor
 * and appended the same rows twice.
 */
function olderButton(label, attrs, cursor, next) {
  const button = el('button', { type: 'button', ...attrs }, label)
  button.addEventListener('click', async () => {
    button.disabled = true
    more = cursor
    try {
      cursor = await next(cursor)
    } finally {
      button.disabled = false
    }
    if (!cursor) button.remove()
  })
  return button
}

function loadMore(query, cursor, table) {
  return olderButton('Older incidents', {}, cursor, async (after) => {
    query.set('cursor', after)
    const page = await api(`/v1/incidents?${query}`)
    table.tBodies[0].append(...incidentRows(page.items))
    return page.next
  })
}

/** The incident's distinct edge and core events, oldest first. */
function timelineOf(correlations) {
  const events = new Map()
  for (const c of correlations) {
    events.set(`edge:${c.edge.event_id}`, { side: 'edge', ...c.edge })
    events.set(`core:${c.core.event_id}`, { side: 'core', ...c.core })
  }
  return [...events.values()].sort((a, b) => a.time - b.time)
}

function timelineItem(e) {
  if (e.side === 'edge') {
    return el(
      'li',
      { class: 'edge' },
      el('span', { class: 'side' }, 'edge · Falco'),
      el('span', { class: 'mono' }, utc(e.time_iso)),
      ' ',
      el('strong', {}, e.rule),
      ` (${e.priority})${e.hostname ? ` on ${e.hostname}` : ''}`,
      el('div', { class: 'mono muted' }, e.output),
    )
  }
  const where = [e.source_ip && `from ${e.source_ip}`, e.region, e.error_code && `error ${e.error_code}`]
  return el(
    'li',
    { class: 'core' },
    el('span', { class: 'side' }, 'core · CloudTrail'),
    el('span', { class: 'mono' }, utc(e.time_iso)),
    ' ',
    el('strong', { class: 'mono' }, e.action),
    ` ${where.filter(Boolean).join(', ')}`,
    el('div', { class: 'mono muted' }, e.principal),
  )
}

const outcomeRow = (o) =>
  el(
    'tr',
    {},
    el('td', { class: 'mono' }, utc(o.time_iso)),
    el('td', {}, el('span', { class: `status-${o.status}` }, o.status)),
    el('td', {}, o.reason),
    el('td', { class: 'mono' }, o.target ?? ''),
    el('td', {}, o.http_status ?? ''),
  )

/**
 * "sent 1, suppressed 3,000": how many outcomes of each status the incident has, shown or not; past the
 * count's cap, "suppressed 10,000+".
 */
const countsText = (counts, capped = []) =>
  Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([status, n]) => `${status} ${n.toLocaleString('en')}${capped.includes(status) ? '+' : ''}`)
    .join(', ')

/** The next page of one status's outcomes, after those shown: the detail gives its newest few only. */
function olderOutcomes(id, status, cursor, table) {
  return olderButton(`Older ${status} outcomes`, { 'data-status': status }, cursor, async (after) => {
    const query = new URLSearchParams({ incident: id, status, cursor: after, limit: '50' })
    const page = await api(`/v1/revokes?${query}`)
    table.tBodies[0].append(...page.items.map(outcomeRow))
    return page.next
  })
}

async function showIncident(id, keepPages) {
  // The newest 100: the watched agent decides how many its incident has and how long each one's text is.
  // Its revoke outcomes come as the newest few of each status with their counts, so a flood of held-back
  // ones never hides the revoke that went ahead. A refresh keeps older pages loaded, and asks nothing.
  if (keepPages && more) return
  const { incident, correlations, revokes, revoke_counts, revoke_counts_capped, revokes_next } = await api(
    `/v1/incidents/${encodeURIComponent(id)}?correlations=${incidentCorrelations}`,
  )
  if (keepPages && more) return
  more = null
  const summary = el(
    'div',
    { class: 'summary' },
    el('div', {}, el('b', {}, 'agent'), link(['agent', incident.agent_id], incident.agent_id)),
    el('div', {}, el('b', {}, 'max score'), scoreCell(incident.max_score)),
    el('div', {}, el('b', {}, 'revoke'), revokeText(incident.revoke)),
    el('div', {}, el('b', {}, 'first seen'), utc(incident.first_seen_iso)),
    el('div', {}, el('b', {}, 'last seen'), utc(incident.last_seen_iso)),
    el('div', {}, el('b', {}, 'events'), `${incident.edge_events} edge, ${incident.core_events} core`),
  )
  const rules = el(
    'p',
    {},
    incident.rules.map((r) => el('span', { class: 'tag rule' }, r)),
    incident.falco_rules.map((r) => el('span', { class: 'tag falco' }, r)),
  )
  const pairs = el(
    'table',
    { id: 'correlations' },
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        ['rule', 'edge → core', 'delta', 'score', 'why'].map((h) => el('th', {}, h)),
      ),
    ),
    el(
      'tbody',
      {},
      correlations.map((c) =>
        el(
          'tr',
          {},
          el('td', {}, el('span', { class: 'tag rule' }, c.rule.id)),
          el('td', {}, `${c.edge.rule} → `, el('span', { class: 'mono' }, c.core.action)),
          el('td', { class: 'mono' }, `${Math.round(c.delta_ms / 1000)} s`),
          el('td', {}, scoreCell(c.score)),
          el(
            'td',
            {},
            c.reasons.map((r) => el('div', {}, `+${r.points} ${r.factor}: ${r.detail}`)),
          ),
        ),
      ),
    ),
  )
  const outcomes = el('table', { id: 'revokes' }, el('tbody', {}, revokes.map(outcomeRow)))
  const older = Object.entries(revokes_next).map(([status, cursor]) =>
    olderOutcomes(incident.id, status, cursor, outcomes),
  )
  view.replaceChildren(
    el('p', {}, link([''], '← incidents')),
    el(
      'h1',
      {},
      `Incident ${incident.id.slice(0, 12)}`,
      el('span', { class: 'muted mono' }, ` ${incident.id}`),
    ),
    summary,
    rules,
    el('h2', {}, 'Timeline'),
    el('ol', { class: 'timeline', id: 'timeline' }, timelineOf(correlations).map(timelineItem)),
    el(
      'h2',
      {},
      correlations.length < incident.correlations
        ? `Correlations (the newest ${correlations.length} of ${incident.correlations})`
        : `Correlations (${correlations.length})`,
    ),
    pairs,
    el(
      'h2',
      {},
      revokes.length
        ? `Revoke decisions (${countsText(revoke_counts, revoke_counts_capped)})`
        : 'Revoke decisions',
    ),
    revokes.length ? outcomes : el('p', { class: 'muted' }, 'No revoke decision for this incident.'),
    ...older,
  )
}

function identifiers(entries) {
  return el(
    'dl',
    { class: 'ids' },
    entries.flatMap(([k, v]) => [
      el('dt', {}, k),
      el('dd', { class: 'mono' }, typeof v === 'object' ? JSON.stringify(v) : String(v)),
    ]),
  )
}

async function showAgent(id) {
  const [incidents, correlations, registry] = await Promise.all([
    api(`/v1/incidents?agent=${encodeURIComponent(id)}&limit=20`),
    api(`/v1/correlations?agent=${encodeURIComponent(id)}&limit=1`),
    api(`/v1/agents?agent=${encodeURIComponent(id)}`).catch(() => null),
  ])
  const latest = correlations.items[0]
  const known = registry?.items?.[0]
  const nodes = [el('p', {}, link([''], '← incidents')), el('h1', {}, `Agent ${id}`)]
  if (latest) {
    nodes.push(el('h2', {}, `Identifiers (resolved by ${latest.agent.resolved_by})`))
    nodes.push(identifiers(Object.entries(latest.agent.identity)))
  }
  if (known) {
    nodes.push(el('h2', {}, 'Seen by ingest since it started'))
    nodes.push(identifiers(Object.entries(known).filter(([k]) => k !== 'id')))
  }
  nodes.push(el('h2', {}, `Recent incidents (${incidents.total})`), incidentTable(incidents.items))
  view.replaceChildren(...nodes)
}

/** Pages being fetched: a refresh waits for the last one rather than queue behind it in the reader. */
let routing = 0

async function route(background = false) {
  routing++
  try {
    // In the try: a link with a broken escape (`%E0%A4%A`) throws here, and is then said on the page.
    const [path] = location.hash.replace(/^#\/?/, '').split('?')
    const [kind, id] = path.split('/').map(decodeURIComponent)
    if (kind === 'incident' && id) await showIncident(id, background)
    else if (kind === 'agent' && id) await showAgent(id)
    else await showIncidents(filtersFromHash(), background)
    live.textContent = `live · updated ${new Date().toISOString().slice(11, 19)} UTC`
    live.classList.remove('stale')
  } catch (err) {
    live.classList.add('stale')
    live.textContent = 'not updated'
    if (!background) view.replaceChildren(el('p', { class: 'error' }, err.message))
  } finally {
    routing--
  }
}

/**
 * Refreshes in the background, but never while the reader is typing in a filter or has loaded older pages,
 * nor while a page is still being fetched (a slow read: a tick every 5 s would pile reads up in the reader).
 */
function schedule() {
  clearInterval(timer)
  timer = setInterval(() => {
    if (routing > 0 || document.activeElement?.tagName === 'INPUT') return
    route(true)
  }, refreshMs)
}

window.addEventListener('hashchange', () => {
  more = null
  route()
})
route()
schedule()
