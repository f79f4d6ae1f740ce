// Forge's dashboard: one module on Preact + htm (tagged templates, no JSX, so no build step),
// plots in inline SVG. It reads the JSON API of web/server.ts, sends the bearer token from the
// address's #token=… fragment, and listens to the server's event stream to refetch what changed.
import htm from 'htm';
import { h, render } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';

const html = htm.bind(h);

// ------------------------------------------------------------------ token and API

const TOKEN_KEY = 'forge-dashboard-token';

/** The token from #token=… (then removed from the address bar), else the one this browser kept. */
function takeToken() {
  const match = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (match) {
    localStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return localStorage.getItem(TOKEN_KEY) ?? '';
}

const token = takeToken();

// An address with a token pasted into a tab already on the page changes only its fragment: no reload by itself.
window.addEventListener('hashchange', () => {
  if (/(?:^|[#&])token=/.test(location.hash)) {
    takeToken();
    location.reload();
  }
});

class ApiError extends Error {
  constructor(status, body) {
    super(body.error ?? `HTTP ${status}`);
    this.status = status;
    this.fix = body.fix;
  }
}

async function api(path, body) {
  const res = await fetch(path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  const parsed = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, parsed);
  return parsed;
}

/**
 * The server's event stream, read with fetch (EventSource cannot send the token). Every (re)connect
 * reports all sections as changed: the page may have missed something while it was away. While the
 * stream is down the page polls, so it never goes stale.
 */
function useLive(onChange, enabled) {
  const [state, setState] = useState('connecting');
  const handler = useRef(onChange);
  handler.current = onChange;
  useEffect(() => {
    if (!enabled) return undefined;
    let stopped = false;
    let controller;
    let poll;
    const all = ['killSwitch', 'pending', 'catalog', 'audit', 'cycles'];
    async function connect() {
      while (!stopped) {
        controller = new AbortController();
        try {
          const res = await fetch('/api/events', { headers: { authorization: `Bearer ${token}` }, signal: controller.signal });
          if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
          const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += value;
            let end = buffer.indexOf('\n\n');
            while (end >= 0) {
              const frame = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              const event = /^event: (.*)$/m.exec(frame)?.[1];
              const data = /^data: (.*)$/m.exec(frame)?.[1];
              if (event === 'hello') {
                setState('live');
                clearInterval(poll);
                poll = undefined;
                handler.current(all);
              } else if (event === 'change' && data) handler.current(JSON.parse(data).sections);
              end = buffer.indexOf('\n\n');
            }
          }
        } catch {
          // fall through: reconnect below
        }
        if (stopped) return;
        setState('reconnecting');
        poll ??= setInterval(() => handler.current(all), 5000);
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
    void connect();
    return () => {
      stopped = true;
      controller?.abort();
      clearInterval(poll);
    };
  }, [enabled]);
  return state;
}

// ------------------------------------------------------------------ formatting

const pct = (x) => `${Math.round(x * 100)} %`;
const ms = (x) => (x === null || x === undefined ? '–' : x >= 1000 ? `${(x / 1000).toFixed(1)} s` : `${Math.round(x)} ms`);
const when = (iso) => new Date(iso).toLocaleString();
function ago(iso) {
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}
const clip = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);
const asText = (v) => (v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v));

function ErrorLine({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.message}${error.fix ? html` <span class="fix">— ${error.fix}</span>` : null}</p>`;
}

// ------------------------------------------------------------------ kill switch

function KillSwitch({ state, onDone }) {
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  async function act(path, body) {
    setBusy(true);
    setError(null);
    try {
      await api(path, body);
      setReason('');
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  if (!state) return null;
  return html`<section class=${`kill ${state.frozen ? 'frozen' : ''}`} data-testid="kill-switch" data-frozen=${String(state.frozen)}>
    <div>
      <strong>Kill switch: ${state.frozen ? 'FROZEN' : 'off'}</strong>
      <span class="muted">
        ${
          state.frozen
            ? ` — every side effect is refused${state.by ? ` (by ${state.by}` : ''}${state.since ? ` ${ago(state.since)}` : ''}${state.by ? ')' : ''}${state.reason ? `: ${state.reason}` : ''}`
            : ' — Forge runs tools, forges and evolves'
        }
      </span>
    </div>
    ${
      state.frozen
        ? html`<button class="primary" disabled=${busy} onClick=${() => act('/api/thaw', {})}>Thaw</button>`
        : html`<form class="inline" onSubmit=${(e) => {
            e.preventDefault();
            void act('/api/freeze', { reason });
          }}>
            <input aria-label="reason to freeze" placeholder="reason (optional)" value=${reason} onInput=${(e) => setReason(e.currentTarget.value)} />
            <button class="danger" type="submit" disabled=${busy}>Freeze</button>
          </form>`
    }
    <${ErrorLine} error=${error} />
  </section>`;
}

// ------------------------------------------------------------------ what waits for a person

const KIND_LABEL = {
  write: 'write',
  destructive: 'destructive call',
  confirm: 'confirm reuse',
  budget: 'forge past budget',
  escalation: 'escalation',
  question: 'question',
  consent: 'evolution consent',
};

function PendingRow({ item, onDone }) {
  const [answer, setAnswer] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  async function decide(decision) {
    setBusy(true);
    setError(null);
    try {
      if (item.kind === 'consent')
        // The digest the person was shown: the cycle refuses a consent to another image.
        await api(`/api/consents/${encodeURIComponent(item.id)}`, { decision, ...(item.digest ? { digest: item.digest } : {}) });
      else
        await api(`/api/approvals/${encodeURIComponent(item.id)}`, {
          decision,
          ...(item.answers === 'text' && decision === 'approve' ? { answer } : {}),
        });
      onDone();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }
  return html`<li class="pending" data-testid="pending" data-id=${item.id} data-kind=${item.kind}>
    <div class="pending-head">
      <span class=${`badge kind-${item.kind}`}>${KIND_LABEL[item.kind] ?? item.kind}</span>
      ${item.tool ? html`<code>${item.tool}</code>` : null}
      <span class="muted" title=${when(item.createdAt)}>${ago(item.createdAt)}</span>
      ${item.uiUrl ? html`<a href=${item.uiUrl} target="_blank" rel="noreferrer noopener">${item.workflowId}</a>` : html`<code>${item.workflowId}</code>`}
    </div>
    <p class="summary">${item.summary}</p>
    ${item.diff ? html`<details class="patch"><summary>the patch</summary><${Diff} text=${item.diff} /></details>` : null}
    ${
      item.answers === 'text'
        ? html`<form class="inline" onSubmit=${(e) => {
            e.preventDefault();
            void decide('approve');
          }}>
            <input aria-label=${`answer to ${item.id}`} placeholder="your answer" value=${answer} onInput=${(e) => setAnswer(e.currentTarget.value)} />
            <button class="primary" type="submit" disabled=${busy || !answer.trim()}>Answer</button>
            <button type="button" disabled=${busy} onClick=${() => decide('reject')}>Decline</button>
          </form>`
        : html`<div class="actions">
            <button class="primary" disabled=${busy} onClick=${() => decide('approve')}>Approve</button>
            <button disabled=${busy} onClick=${() => decide('reject')}>Reject</button>
          </div>`
    }
    <${ErrorLine} error=${error} />
  </li>`;
}

function Pending({ items, budget, onDone }) {
  return html`<section data-testid="pending-panel">
    <h2>Waiting for you <span class="count">${items.length}</span></h2>
    ${budget ? html`<p class="muted" data-testid="budget">Forge budget today: ${budget.usedToday} of ${budget.limit} new tools used${budget.remaining === 0 ? ' — the next forge waits for your approval' : ''}.</p>` : null}
    ${
      items.length
        ? html`<ul class="pending-list">${items.map((item) => html`<${PendingRow} key=${item.id} item=${item} onDone=${onDone} />`)}</ul>`
        : html`<p class="muted">Nothing waits for you.</p>`
    }
  </section>`;
}

// ------------------------------------------------------------------ cycles

const CYCLE_KINDS = ['task', 'forge', 'improve', 'evolve', 'curate', 'deploy', 'call', 'replay'];

function duration(x) {
  const s = Math.round(x / 1000);
  if (x < 1000) return `${Math.round(x)} ms`;
  if (s < 60) return `${(x / 1000).toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function Cycles({ cycles, kind, setKind, error }) {
  // A running cycle's duration keeps counting between updates.
  const [now, setNow] = useState(Date.now());
  const running = cycles.some((c) => c.status === 'running');
  useEffect(() => {
    setNow(Date.now());
    if (!running) return undefined;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [cycles, running]);
  return html`<section data-testid="cycles">
    <h2>Cycles <span class="count">${cycles.length}</span></h2>
    <div class="inline filters" role="group" aria-label="cycle kind">
      ${['', ...CYCLE_KINDS].map(
        (k) =>
          html`<button type="button" class=${k === kind ? 'chosen' : ''} aria-pressed=${String(k === kind)} onClick=${() => setKind(k)}>${k || 'all'}</button>`,
      )}
    </div>
    <${ErrorLine} error=${error} />
    ${
      cycles.length
        ? html`<table class="cycles">
            <thead><tr><th>kind</th><th>workflow</th><th>status</th><th>started</th><th>duration</th><th>tool</th></tr></thead>
            <tbody>
              ${cycles.map(
                (
                  c,
                ) => html`<tr key=${c.runId} data-testid="cycle" data-kind=${c.kind} data-status=${c.status} data-workflow=${c.workflowId}>
                  <td><span class=${`badge cycle-${c.kind}`}>${c.kind}</span></td>
                  <td>
                    ${c.uiUrl ? html`<a href=${c.uiUrl} target="_blank" rel="noreferrer noopener">${c.workflowId}</a>` : html`<code>${c.workflowId}</code>`}
                    ${c.parentWorkflowId ? html`<div class="muted">from <code>${c.parentWorkflowId}</code></div>` : null}
                  </td>
                  <td><span class=${`badge status-${c.status}`}>${c.status.replace(/_/g, ' ')}</span></td>
                  <td title=${when(c.startedAt)}>${ago(c.startedAt)}</td>
                  <td>${c.status === 'running' ? `running for ${duration(Math.max(c.durationMs, now - new Date(c.startedAt).getTime()))}` : duration(c.durationMs)}</td>
                  <td>${c.tool ? html`<code>${c.tool}</code>` : ''}</td>
                </tr>`,
              )}
            </tbody>
          </table>`
        : html`<p class="muted">${kind ? `No ${kind} cycles yet.` : html`No cycles yet: run a task with <code>forge run "…"</code>.`}</p>`
    }
  </section>`;
}

// ------------------------------------------------------------------ plots

const W = 640;
const H = 170;
const M = { l: 48, r: 14, t: 14, b: 28 };

/** x by time; calls that all share one instant spread over one second so the line still draws. */
function timeScale(points) {
  const ts = points.map((p) => new Date(p.at).getTime());
  const lo = Math.min(...ts);
  const hi = Math.max(...ts, lo + 1000);
  return (iso) => M.l + ((new Date(iso).getTime() - lo) / (hi - lo)) * (W - M.l - M.r);
}

function VersionMarks({ changes, x }) {
  return changes
    .filter((c) => c.from !== null)
    .map(
      (c) => html`<g class="version-mark" data-version=${c.to}>
        <line x1=${x(c.at)} x2=${x(c.at)} y1=${M.t} y2=${H - M.b} />
        <text x=${x(c.at) + 3} y=${M.t + 9}>v${c.to}</text>
        <title>v${c.from} → v${c.to} from ${when(c.at)}</title>
      </g>`,
    );
}

function TimeAxis({ points }) {
  const first = points[0];
  const last = points[points.length - 1];
  return html`<g class="axis">
    <line x1=${M.l} x2=${W - M.r} y1=${H - M.b} y2=${H - M.b} />
    <text x=${M.l} y=${H - 8}>${when(first.at)}</text>
    <text x=${W - M.r} y=${H - 8} text-anchor="end">${when(last.at)}</text>
  </g>`;
}

function SuccessPlot({ series }) {
  const { points, changes, window } = series;
  const x = timeScale(points);
  const y = (rate) => M.t + (1 - rate) * (H - M.t - M.b);
  const line = points.map((p) => `${x(p.at).toFixed(1)},${y(p.successRate).toFixed(1)}`).join(' ');
  return html`<figure>
    <figcaption>Success rate (last ${window} calls)</figcaption>
    <svg class="plot" data-testid="plot-success" viewBox=${`0 0 ${W} ${H}`} role="img" aria-label="success rate over time">
      ${[0, 0.5, 1].map(
        (r) =>
          html`<g class="grid"><line x1=${M.l} x2=${W - M.r} y1=${y(r)} y2=${y(r)} /><text x=${M.l - 6} y=${y(r) + 4} text-anchor="end">${r * 100} %</text></g>`,
      )}
      <${TimeAxis} points=${points} />
      <${VersionMarks} changes=${changes} x=${x} />
      <polyline class="rate" points=${line} />
      ${points.map(
        (p) => html`<circle class=${p.success ? 'ok' : 'fail'} cx=${x(p.at)} cy=${y(p.successRate)} r="2.5">
          <title>${when(p.at)} v${p.version}: ${p.success ? 'succeeded' : 'failed'}; ${pct(p.successRate)} of the last ${window}</title>
        </circle>`,
      )}
    </svg>
  </figure>`;
}

function LatencyPlot({ series }) {
  const { points, changes } = series;
  const x = timeScale(points);
  const max = Math.max(10, ...points.map((p) => p.latencyMs)) * 1.1;
  const y = (v) => M.t + (1 - v / max) * (H - M.t - M.b);
  return html`<figure>
    <figcaption>Latency per call</figcaption>
    <svg class="plot" data-testid="plot-latency" viewBox=${`0 0 ${W} ${H}`} role="img" aria-label="latency over time">
      ${[0, max / 2, max].map(
        (v) =>
          html`<g class="grid"><line x1=${M.l} x2=${W - M.r} y1=${y(v)} y2=${y(v)} /><text x=${M.l - 6} y=${y(v) + 4} text-anchor="end">${ms(v)}</text></g>`,
      )}
      <${TimeAxis} points=${points} />
      <${VersionMarks} changes=${changes} x=${x} />
      ${points.map(
        (p) => html`<circle class=${`call ${p.success ? 'ok' : 'fail'}`} cx=${x(p.at)} cy=${y(p.latencyMs)} r="3">
          <title>${when(p.at)} v${p.version}: ${ms(p.latencyMs)}${p.success ? '' : ', failed'}</title>
        </circle>`,
      )}
    </svg>
  </figure>`;
}

// ------------------------------------------------------------------ catalog

function Diff({ text }) {
  return html`<pre class="diff">${text.split('\n').map((line) => {
    const cls =
      line.startsWith('+++') || line.startsWith('---')
        ? 'file'
        : line.startsWith('+')
          ? 'add'
          : line.startsWith('-')
            ? 'del'
            : line.startsWith('@@')
              ? 'hunk'
              : '';
    // The newline as a value: htm collapses whitespace written in the template itself.
    return html`<span class=${cls}>${`${line}\n`}</span>`;
  })}</pre>`;
}

function ToolDetail({ view, error }) {
  if (error) return html`<${ErrorLine} error=${error} />`;
  if (!view) return html`<p class="muted">Loading…</p>`;
  const t = view.tool;
  const points = view.reliability.points;
  return html`<div class="tool-detail" data-testid="tool-detail" data-tool=${t.name}>
    <h3>${t.name} <span class="muted">v${t.currentVersion ?? '–'}</span></h3>
    <p>${t.description}</p>
    <p class="facts">
      <span class=${`badge trust-${t.level}`}>trust: ${t.level}</span>
      <span class="badge">${t.status}</span>
      <span class="badge">${t.sideEffect}${t.destructive ? ', destructive' : ''}</span>
      ${t.pinned ? html`<span class="badge">pinned</span>` : null}
      <span class="muted">current version: ${t.invocations} calls, ${pct(t.successRate)} succeeded, avg ${ms(t.avgLatencyMs)}</span>
    </p>
    ${
      points.length
        ? html`<div class="plots"><${SuccessPlot} series=${view.reliability} /><${LatencyPlot} series=${view.reliability} /></div>`
        : html`<p class="muted" data-testid="no-calls">No calls yet: the plots appear with the first one.</p>`
    }
    <h4>Versions</h4>
    <ol class="versions">
      ${view.history.map(
        (v) => html`<li data-testid="version" data-version=${v.version}>
          <details open=${v.current && v.diff !== ''}>
            <summary>
              <strong>v${v.version}</strong>${v.current ? html` <span class="badge current">current</span>` : null}
              <span class="muted"> ${v.status}, by ${v.createdBy}, ${when(v.createdAt)}${v.onDisk !== 'same' ? ` — on disk: ${v.onDisk}` : ''}</span>
            </summary>
            ${v.diff ? html`<${Diff} text=${v.diff} />` : html`<p class="muted">${v.version === 1 ? 'the first version' : 'same code as the version before'}</p>`}
          </details>
        </li>`,
      )}
    </ol>
  </div>`;
}

function Catalog({ tools, selected, onSelect, view, viewError }) {
  return html`<section data-testid="catalog">
    <h2>Catalog <span class="count">${tools.length}</span></h2>
    ${
      tools.length
        ? html`<table class="tools">
            <thead><tr><th>tool</th><th>version</th><th>status</th><th>trust</th><th>effect</th><th>calls</th><th>success</th><th>avg latency</th></tr></thead>
            <tbody>
              ${tools.map(
                (t) => html`<tr
                  key=${t.name}
                  class=${t.name === selected ? 'selected' : ''}
                  data-testid="tool-row"
                  data-tool=${t.name}
                  tabindex="0"
                  onClick=${() => onSelect(t.name)}
                  onKeyDown=${(e) => e.key === 'Enter' && onSelect(t.name)}
                >
                  <td><code>${t.name}</code>${t.pinned ? ' 📌' : ''}</td>
                  <td>v${t.currentVersion ?? '–'} <span class="muted">of ${t.versions}</span></td>
                  <td>${t.status}</td>
                  <td><span class=${`badge trust-${t.level}`}>${t.level}</span></td>
                  <td>${t.sideEffect}${t.destructive ? '!' : ''}</td>
                  <td>${t.invocations}</td>
                  <td>${t.invocations ? pct(t.successRate) : '–'}</td>
                  <td>${ms(t.avgLatencyMs)}</td>
                </tr>`,
              )}
            </tbody>
          </table>`
        : html`<p class="muted">No tools yet: forge one with <code>forge forge "…"</code>.</p>`
    }
    ${selected ? html`<${ToolDetail} view=${view} error=${viewError} />` : null}
  </section>`;
}

// ------------------------------------------------------------------ audit log

const AUDIT_KINDS = ['tool_call', 'refused_call', 'replay', 'promotion', 'rollback', 'archive', 'pin', 'unpin', 'inherit_cases'];

function AuditRow({ e }) {
  const [open, setOpen] = useState(false);
  return html`<tbody class="audit-entry" data-testid="audit-entry" data-kind=${e.kind}>
    <tr onClick=${() => setOpen(!open)} class="clickable">
      <td>${e.id}</td>
      <td title=${when(e.at)}>${ago(e.at)}</td>
      <td>${e.kind}</td>
      <td>${e.tool ? html`<code>${e.tool}${e.version ? `@${e.version}` : ''}</code>` : ''}</td>
      <td>${e.success === null ? '' : e.success ? '✓' : '✗'}</td>
      <td>${ms(e.latencyMs)}</td>
      <td class="wide">${clip(asText(e.input), 90)}</td>
    </tr>
    ${
      open
        ? html`<tr class="audit-more"><td colspan="7">
            <dl>
              ${e.workflowId ? html`<dt>workflow</dt><dd><code>${e.workflowId}</code></dd>` : null}
              ${e.reasoning ? html`<dt>reasoning</dt><dd>${e.reasoning}</dd>` : null}
              ${e.taskContext ? html`<dt>task</dt><dd><pre>${JSON.stringify(e.taskContext, null, 2)}</pre></dd>` : null}
              <dt>input</dt><dd><pre>${JSON.stringify(e.input, null, 2)}</pre></dd>
              <dt>output</dt><dd><pre>${JSON.stringify(e.output, null, 2)}</pre></dd>
            </dl>
          </td></tr>`
        : null
    }
  </tbody>`;
}

function Audit({ entries, filter, setFilter, error }) {
  return html`<section data-testid="audit">
    <h2>Audit log</h2>
    <form class="inline" onSubmit=${(e) => e.preventDefault()}>
      <input
        type="search"
        aria-label="search the audit log"
        placeholder="search: tool, input, output, reasoning, workflow…"
        value=${filter.q}
        onInput=${(e) => setFilter({ ...filter, q: e.currentTarget.value })}
      />
      <select aria-label="kind" value=${filter.kind} onChange=${(e) => setFilter({ ...filter, kind: e.currentTarget.value })}>
        <option value="">every kind</option>
        ${AUDIT_KINDS.map((k) => html`<option value=${k}>${k}</option>`)}
      </select>
    </form>
    <${ErrorLine} error=${error} />
    ${
      entries.length
        ? html`<table class="audit">
            <thead><tr><th>id</th><th>when</th><th>kind</th><th>tool</th><th>ok</th><th>latency</th><th>input</th></tr></thead>
            ${entries.map((e) => html`<${AuditRow} key=${e.id} e=${e} />`)}
          </table>`
        : html`<p class="muted">${filter.q || filter.kind ? 'Nothing matches.' : 'Nothing audited yet.'}</p>`
    }
  </section>`;
}

// ------------------------------------------------------------------ the page

function TokenForm({ message }) {
  const [value, setValue] = useState('');
  return html`<section class="token">
    <h2>Forge dashboard</h2>
    <p>${message}</p>
    <p class="muted">Open the address <code>forge up</code> or <code>forge dashboard</code> printed (it ends in <code>#token=…</code>), or paste the token from <code>$FORGE_HOME/mcp-token</code> (or <code>FORGE_MCP_TOKEN</code>).</p>
    <form class="inline" onSubmit=${(e) => {
      e.preventDefault();
      localStorage.setItem(TOKEN_KEY, value.trim());
      location.reload();
    }}>
      <input type="password" aria-label="token" placeholder="token" value=${value} onInput=${(e) => setValue(e.currentTarget.value)} />
      <button class="primary" type="submit">Use token</button>
    </form>
  </section>`;
}

function App() {
  const [overview, setOverview] = useState(null);
  const [authError, setAuthError] = useState(token ? null : 'No token yet.');
  const [error, setError] = useState(null);
  const [selected, setSelected] = useState(() => new URLSearchParams(location.search).get('tool'));
  const [view, setView] = useState(null);
  const [viewError, setViewError] = useState(null);
  const [filter, setFilter] = useState({ q: '', kind: '' });
  const [entries, setEntries] = useState([]);
  const [auditError, setAuditError] = useState(null);
  const [cycleKind, setCycleKind] = useState('');
  const [cycles, setCycles] = useState([]);
  const [cyclesError, setCyclesError] = useState(null);
  const cycleKindRef = useRef(cycleKind);
  cycleKindRef.current = cycleKind;
  const selectedRef = useRef(selected);
  selectedRef.current = selected;
  const filterRef = useRef(filter);
  filterRef.current = filter;

  const guard = useCallback((err) => {
    if (err.status === 401) setAuthError(`${err.message}.`);
    return err;
  }, []);

  const loadOverview = useCallback(async () => {
    try {
      setOverview(await api('/api/overview'));
      setError(null);
    } catch (err) {
      setError(guard(err));
    }
  }, [guard]);

  const loadTool = useCallback(async () => {
    const name = selectedRef.current;
    if (!name) return;
    try {
      const got = await api(`/api/tools/${encodeURIComponent(name)}`);
      if (selectedRef.current === name) {
        setView(got);
        setViewError(null);
      }
    } catch (err) {
      setViewError(guard(err));
    }
  }, [guard]);

  const loadAudit = useCallback(async () => {
    const f = filterRef.current;
    const q = new URLSearchParams({ limit: '100', ...(f.q.trim() ? { q: f.q.trim() } : {}), ...(f.kind ? { kind: f.kind } : {}) });
    try {
      const got = await api(`/api/audit?${q}`);
      if (filterRef.current === f) {
        setEntries(got.entries);
        setAuditError(null);
      }
    } catch (err) {
      setAuditError(guard(err));
    }
  }, [guard]);

  const loadCycles = useCallback(async () => {
    const kind = cycleKindRef.current;
    try {
      const got = await api(`/api/cycles?${new URLSearchParams({ limit: '50', ...(kind ? { kind } : {}) })}`);
      if (cycleKindRef.current === kind) {
        setCycles(got.cycles);
        setCyclesError(null);
      }
    } catch (err) {
      setCyclesError(guard(err));
    }
  }, [guard]);

  const onChange = useCallback(
    (sections) => {
      if (sections.some((s) => s !== 'audit' && s !== 'cycles')) void loadOverview();
      if (sections.includes('catalog')) void loadTool();
      if (sections.includes('audit')) void loadAudit();
      if (sections.includes('cycles')) void loadCycles();
    },
    [loadOverview, loadTool, loadAudit, loadCycles],
  );
  const live = useLive(onChange, !authError);

  useEffect(() => {
    if (authError) return;
    void loadOverview();
    void loadAudit();
  }, [authError, loadOverview, loadAudit]);

  // The cycles of the chosen kind: loaded when the kind changes (and at first).
  useEffect(() => {
    if (!authError) void loadCycles();
  }, [cycleKind, authError, loadCycles]);

  // The selected tool: loaded when it changes, kept in the address (?tool=) so a link can name it.
  useEffect(() => {
    setView(null);
    setViewError(null);
    const url = new URL(location.href);
    if (selected) url.searchParams.set('tool', selected);
    else url.searchParams.delete('tool');
    history.replaceState(null, '', url);
    if (selected && !authError) void loadTool();
  }, [selected, authError, loadTool]);

  // A search waits for the person to stop typing.
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return undefined;
    }
    const t = setTimeout(() => void loadAudit(), 250);
    return () => clearTimeout(t);
  }, [filter, loadAudit]);

  const refresh = useCallback(() => {
    void loadOverview();
    void loadAudit();
  }, [loadOverview, loadAudit]);

  const title = useMemo(() => {
    const n = overview?.pending.length ?? 0;
    return `${n ? `(${n}) ` : ''}${overview?.killSwitch.frozen ? 'FROZEN · ' : ''}Forge`;
  }, [overview]);
  useEffect(() => {
    document.title = title;
  }, [title]);

  if (authError) return html`<${TokenForm} message=${authError} />`;
  return html`<div class="page" data-testid="dashboard" data-live=${live}>
    <header>
      <h1>Forge</h1>
      <span class=${`live ${live}`} data-testid="live" title="updates from the server">${live === 'live' ? 'live' : live === 'connecting' ? 'connecting…' : 'reconnecting… (polling)'}</span>
      ${overview?.temporalUi ? html`<a href=${overview.temporalUi} target="_blank" rel="noreferrer noopener">Temporal UI</a>` : null}
      ${overview ? html`<span class="muted">deciding as <strong>${overview.user}</strong></span>` : null}
    </header>
    <${ErrorLine} error=${error} />
    ${
      overview
        ? html`
            <${KillSwitch} state=${overview.killSwitch} onDone=${refresh} />
            <${Pending} items=${overview.pending} budget=${overview.budget} onDone=${refresh} />
            <${Cycles} cycles=${cycles} kind=${cycleKind} setKind=${setCycleKind} error=${cyclesError} />
            <${Catalog} tools=${overview.tools} selected=${selected} onSelect=${(name) => setSelected(name === selected ? null : name)} view=${view} viewError=${viewError} />
            <${Audit} entries=${entries} filter=${filter} setFilter=${setFilter} error=${auditError} />`
        : html`<p class="muted">Loading…</p>`
    }
  </div>`;
}

// The placeholder goes: render() adds to what the container holds.
const container = document.getElementById('app');
container.textContent = '';
render(html`<${App} />`, container);
