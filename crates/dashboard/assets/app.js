// chainsim control room. Plain JS, no build step, no dependencies.
// Everything a node says is put on the page with textContent or as SVG text, never as
// markup: a sender named <script> shows as those characters.
'use strict';

(() => {
  const TOKEN = document.querySelector('meta[name="chainsim-token"]')?.content ?? '';
  const SVGNS = 'http://www.w3.org/2000/svg';
  const COLORS = ['#6366f1', '#f59e0b', '#10b981', '#ef4444', '#06b6d4', '#a855f7', '#84cc16', '#ec4899', '#0ea5e9', '#f97316'];
  const MAX_U64 = 18446744073709551615n;

  const I18N = {
    en: {
      title: 'chainsim control room',
      subtitle: 'A peer-to-peer proof-of-work blockchain, live',
      connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…',
      demoBadge: 'demo',
      nodes: 'Nodes',
      colNode: 'Node', colStatus: 'Status', colLength: 'Chain length', colTip: 'Tip', colPending: 'Pending',
      colPeers: 'Peers', colMiner: 'Miner', colLastBlock: 'Last block', colActions: 'Actions',
      online: 'Online', offline: 'Offline', miningNow: 'mining',
      mine: 'Mine', sync: 'Sync', stop: 'Stop', start: 'Start', addNode: 'Add node',
      mining: 'Mining…', syncing: 'Syncing…', stopping: 'Stopping…', starting: 'Starting…', adding: 'Starting a node…',
      noNodes: 'Looking for nodes…',
      genesis: 'genesis',
      agoS: '{n} s ago', agoM: '{n} min ago', agoH: '{n} h ago', agoD: '{n} days ago',
      newTx: 'New transaction',
      txHint: 'The dashboard sends it to one node only; gossip carries it to the others.',
      sender: 'Sender', recipient: 'Recipient', amount: 'Amount', sendTo: 'Send to node',
      sendTx: 'Send transaction', sending: 'Sending…',
      v_required: 'Please fill this in.', v_long: 'At most 64 bytes.', v_control: 'No control characters, please.',
      v_zero: '"0" is reserved for mining rewards.', v_amount: 'Enter a whole number of at least 1.',
      v_big: 'That amount is too large.', v_node: 'Choose a node.',
      txSent: 'Sent to {node}; gossip spreads it. txid {txid}',
      mined: 'Mined block #{height} with {txs} transaction(s)',
      synced: 'Synced: switched to a longer chain (length {length})',
      syncedSame: 'Already up to date (length {length})',
      stopped: 'Stopped', started: 'Started; it catches up by itself', added: 'Started {node}',
      err_unreachable: '{node} is not reachable (is it running?)',
      err_timeout: '{node} did not answer in time',
      err_unknown_node: 'Unknown node',
      err_forbidden: 'Refused: please reload the page',
      err_invalid: 'Invalid input: {detail}',
      err_network: 'The dashboard did not answer',
      err_not_demo: 'Only `chainsim demo` can do that',
      network: 'Network',
      networkHint: 'Nodes and their peer links. A ring flashes when a block arrives.',
      propagation: 'Propagation',
      propHint: 'When each node received a block or transaction, counted from the node that had it first.',
      noProp: 'Nothing has travelled yet.',
      item: 'Item', first: 'first', blockWord: 'Block', txWord: 'Tx',
      heights: 'Chain height over time',
      heightsHint: 'Each line is one node; a node that falls behind catches up when it syncs.',
      now: 'now', minAgo: '−{n} min',
      activity: 'Activity', noActivity: 'Nothing yet. Send a transaction or mine a block.',
      forks: 'Forks and reorganisations',
      forksHint: "Every node's recent blocks merged into one tree; a tag marks each node's tip. Click a block for its details.",
      reorgs: 'Reorganisations', noReorgs: 'No reorganisation yet.',
      reorgLine: '{node} switched branch at height {h}: −{d} / +{c} blocks',
      returned: 'Returned to pending:', noneReturned: 'no transactions returned',
      explorer: 'Block explorer',
      explorerHint: 'The latest blocks of each node, side by side. Click a block for its details.',
      noBlocks: 'No blocks yet',
      blockTitle: 'Block #{h}', seenOn: 'from {node}',
      f_hash: 'Hash', f_height: 'Height', f_index: 'Index', f_prev: 'Previous hash', f_merkle: 'Merkle root',
      f_time: 'Time', f_target: 'Target', f_bits: 'Bits', f_nonce: 'Nonce', f_size: 'Size (bytes)', f_version: 'Version',
      zerosHint: 'The leading zeros are the proof of work: the hash had to fall below the target.',
      txs: 'Transactions', txid: 'Txid', from: 'From', to: 'To', coinbase: 'mining reward',
      proof: 'Merkle proof', showProof: 'Proof', proofIndex: 'Position in block', siblings: 'Sibling hashes', root: 'Root',
      verified: '✓ Checked in your browser: this path leads to the block’s Merkle root.',
      notVerified: '✗ This path does not lead to the Merkle root.',
      pendingTx: 'Still pending: there is no proof before it is mined.',
      close: 'Close', loading: 'Loading…',
      ev_block: 'block #{h}', ev_block_here: 'mined block #{h}', ev_tx: 'transaction {s} → {r} ({a})',
      ev_reorg: 'reorganised at height {h}', ev_peer: 'peer {a}: {s}', ev_mining_on: 'started mining',
      ev_mining_off: 'stopped mining', ev_via: 'via {p}',
      flash_mine_ok: 'Mined a block on {node}.', flash_mine_fail: 'Mining on {node} failed.',
      flash_sync_ok: '{node} synchronised.', flash_sync_fail: 'Syncing {node} failed.',
      flash_tx_ok: 'Transaction sent to {node}.', flash_tx_fail: 'Sending the transaction to {node} failed.',
      flash_blocked: 'Ignored a request that came from another site.', flash_unknown_node: 'Unknown node.',
      footer: 'chainsim — a teaching simulator. The page talks only to this dashboard; the dashboard talks only to the nodes’ public HTTP API.',
    },
    ko: {
      title: 'chainsim 관제실',
      subtitle: 'P2P 작업증명 블록체인을 실시간으로 살펴보세요',
      connecting: '연결 중…', live: '실시간', reconnecting: '다시 연결하는 중…',
      demoBadge: '데모',
      nodes: '노드',
      colNode: '노드', colStatus: '상태', colLength: '체인 길이', colTip: '최신 블록', colPending: '대기 거래',
      colPeers: '연결된 노드', colMiner: '채굴자', colLastBlock: '마지막 블록', colActions: '작업',
      online: '온라인', offline: '오프라인', miningNow: '채굴 중',
      mine: '채굴', sync: '동기화', stop: '중지', start: '시작', addNode: '노드 추가',
      mining: '채굴 중…', syncing: '동기화 중…', stopping: '중지하는 중…', starting: '시작하는 중…', adding: '노드를 띄우는 중…',
      noNodes: '노드를 찾는 중…',
      genesis: '제네시스',
      agoS: '{n}초 전', agoM: '{n}분 전', agoH: '{n}시간 전', agoD: '{n}일 전',
      newTx: '거래 생성 및 전파',
      txHint: '거래는 선택한 노드 한 곳에만 보냅니다. 나머지 노드에는 가십으로 퍼집니다.',
      sender: '보내는 사람', recipient: '받는 사람', amount: '금액', sendTo: '보낼 노드',
      sendTx: '거래 보내기', sending: '보내는 중…',
      v_required: '이 칸을 채워 주세요.', v_long: '64바이트까지만 입력할 수 있어요.', v_control: '제어 문자는 쓸 수 없어요.',
      v_zero: '"0"은 채굴 보상에만 쓰는 이름이에요.', v_amount: '1 이상의 정수를 입력하세요.',
      v_big: '금액이 너무 커요.', v_node: '노드를 고르세요.',
      txSent: '{node} 노드에 보냈습니다. 가십으로 다른 노드에도 퍼집니다. (txid {txid})',
      mined: '블록 #{height} 채굴 완료 (거래 {txs}건)',
      synced: '동기화 완료: 더 긴 체인으로 바꿨습니다 (길이 {length})',
      syncedSame: '이미 최신 체인입니다 (길이 {length})',
      stopped: '중지했습니다', started: '시작했습니다. 체인은 알아서 따라잡습니다', added: '{node} 노드를 시작했습니다',
      err_unreachable: '{node} 노드에 연결할 수 없습니다 (실행 중인가요?)',
      err_timeout: '{node} 노드가 제시간에 응답하지 않았습니다',
      err_unknown_node: '모르는 노드입니다',
      err_forbidden: '요청이 거부되었습니다. 페이지를 새로 고쳐 주세요',
      err_invalid: '입력이 올바르지 않습니다: {detail}',
      err_network: '대시보드가 응답하지 않습니다',
      err_not_demo: '`chainsim demo`에서만 할 수 있습니다',
      network: '네트워크',
      networkHint: '노드와 노드 사이의 연결입니다. 블록이 도착하면 노드 둘레가 반짝입니다.',
      propagation: '전파 시간',
      propHint: '블록이나 거래가 각 노드에 도착한 시각을, 가장 먼저 받은 노드를 기준으로 잽니다.',
      noProp: '아직 전파된 것이 없습니다.',
      item: '항목', first: '최초', blockWord: '블록', txWord: '거래',
      heights: '노드별 체인 높이 변화',
      heightsHint: '선 하나가 노드 하나입니다. 뒤처진 노드는 동기화하면 따라잡습니다.',
      now: '지금', minAgo: '{n}분 전',
      activity: '최근 활동', noActivity: '아직 활동이 없습니다. 거래를 보내거나 블록을 채굴해 보세요.',
      forks: '포크와 체인 재구성',
      forksHint: '모든 노드의 최근 블록을 하나의 트리로 합쳤습니다. 꼬리표는 각 노드의 최신 블록입니다. 블록을 누르면 자세히 볼 수 있습니다.',
      reorgs: '체인 재구성(reorg)', noReorgs: '아직 체인 재구성이 없습니다.',
      reorgLine: '{node} 노드가 높이 {h}에서 다른 가지로 갈아탔습니다: 블록 −{d} / +{c}',
      returned: '대기 거래로 돌아간 거래:', noneReturned: '돌아간 거래 없음',
      explorer: '블록 탐색기',
      explorerHint: '노드별 최신 블록을 나란히 보여 줍니다. 블록을 누르면 자세한 내용을 볼 수 있습니다.',
      noBlocks: '아직 블록이 없습니다',
      blockTitle: '블록 #{h}', seenOn: '{node} 노드 기준',
      f_hash: '해시', f_height: '높이', f_index: '인덱스', f_prev: '이전 블록 해시', f_merkle: '머클 루트',
      f_time: '시각', f_target: '목표값', f_bits: '난이도 비트', f_nonce: '논스', f_size: '크기 (바이트)', f_version: '버전',
      zerosHint: '앞쪽의 0들이 작업증명입니다. 해시가 목표값보다 작아야 합니다.',
      txs: '거래', txid: '거래 ID', from: '보낸 사람', to: '받는 사람', coinbase: '채굴 보상',
      proof: '머클 증명', showProof: '증명 보기', proofIndex: '블록 안 위치', siblings: '형제 해시', root: '루트',
      verified: '✓ 브라우저에서 직접 확인했습니다: 이 경로는 블록의 머클 루트로 이어집니다.',
      notVerified: '✗ 이 경로는 머클 루트로 이어지지 않습니다.',
      pendingTx: '아직 대기 중인 거래라서 채굴되기 전에는 증명이 없습니다.',
      close: '닫기', loading: '불러오는 중…',
      ev_block: '블록 #{h} 받음', ev_block_here: '블록 #{h} 채굴', ev_tx: '거래 {s} → {r} ({a})',
      ev_reorg: '높이 {h}에서 체인 재구성', ev_peer: '피어 {a}: {s}', ev_mining_on: '채굴 시작',
      ev_mining_off: '채굴 종료', ev_via: '({p}에서)',
      flash_mine_ok: '{node} 노드에서 블록을 채굴했습니다.', flash_mine_fail: '{node} 노드의 채굴이 실패했습니다.',
      flash_sync_ok: '{node} 노드를 동기화했습니다.', flash_sync_fail: '{node} 노드의 동기화가 실패했습니다.',
      flash_tx_ok: '{node} 노드에 거래를 보냈습니다.', flash_tx_fail: '{node} 노드에 거래를 보내지 못했습니다.',
      flash_blocked: '다른 사이트에서 온 요청은 무시했습니다.', flash_unknown_node: '모르는 노드입니다.',
      footer: 'chainsim — 교육용 시뮬레이터. 이 페이지는 대시보드하고만, 대시보드는 노드의 공개 HTTP API하고만 이야기합니다.',
    },
  };

  // ---------------------------------------------------------------- state
  const S = {
    demo: false,
    nodes: new Map(),     // address -> view {address, online, managed, status, peers, error}
    chains: new Map(),    // address -> [Block] oldest first
    tree: new Map(),      // hash -> {hash, height, previous_hash, txs}
    heights: [],          // [{t, h: {address: height|null}}]
    arrivals: new Map(),  // kind:id -> record
    reorgs: new Map(),    // id -> record
    txInfo: new Map(),    // txid -> {sender, recipient, amount}
    activity: [],
    selected: null,       // {hash, node}
    skew: 0,              // dashboard clock minus page clock, ms
  };
  const rows = new Map(); // address -> {tr, cells, buttons, msg}
  let lang = pickLang();

  function pickLang() {
    try {
      const saved = localStorage.getItem('chainsim-lang');
      if (saved === 'en' || saved === 'ko') return saved;
    } catch (_) { /* storage may be disabled */ }
    return (navigator.language || 'en').toLowerCase().startsWith('ko') ? 'ko' : 'en';
  }

  function t(key, vars) {
    const s = I18N[lang][key] ?? I18N.en[key] ?? key;
    return vars ? s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m)) : s;
  }

  // ---------------------------------------------------------------- DOM helpers
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  function sv(tag, attrs, ...kids) {
    const e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  function setAttrs(e, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.setAttribute('class', v);
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  const $ = (id) => document.getElementById(id);

  function shortHash(h, n = 12) {
    if (typeof h !== 'string') return '—';
    return h.length > n + 2 ? h.slice(0, n) + '…' : h;
  }
  function hashWithZeros(h) {
    const span = el('span', { class: 'hash' });
    if (typeof h !== 'string') { span.textContent = '—'; return span; }
    const m = /^0*/.exec(h)[0].length;
    if (m) span.append(el('span', { class: 'zeros', title: t('zerosHint') }, h.slice(0, m)));
    span.append(h.slice(m));
    return span;
  }
  // A peer list may name an address that never answers (a stale or inbound-only one):
  // such a node is shown once it has answered at least once.
  function nodeList() {
    return [...S.nodes.values()].filter((v) => v.origin !== 'peer' || v.seen).map((v) => v.address).sort(compareAddr);
  }
  function compareAddr(a, b) {
    const [ha, pa] = splitAddr(a), [hb, pb] = splitAddr(b);
    return ha === hb ? pa - pb : ha < hb ? -1 : 1;
  }
  function splitAddr(a) {
    const i = a.lastIndexOf(':');
    return [a.slice(0, i), Number(a.slice(i + 1)) || 0];
  }
  function colorOf(addr) {
    const i = nodeList().indexOf(addr);
    return COLORS[(i < 0 ? 0 : i) % COLORS.length];
  }
  function portOf(addr) { return String(splitAddr(addr)[1]); }
  function num(v) { return typeof v === 'number' && Number.isFinite(v) ? v : null; }
  function peerCount(view) {
    const p = view.status?.peers;
    if (typeof p === 'number') return p;
    if (Array.isArray(p)) return p.length;
    return (view.peers || []).filter((x) => x && x.state === 'connected').length;
  }
  function nowMs() { return Date.now() + S.skew; }
  function ago(ms) {
    const s = Math.max(0, Math.round((nowMs() - ms) / 1000));
    if (s < 90) return t('agoS', { n: s });
    if (s < 90 * 60) return t('agoM', { n: Math.round(s / 60) });
    if (s < 36 * 3600) return t('agoH', { n: Math.round(s / 3600) });
    return t('agoD', { n: Math.round(s / 86400) });
  }
  function clock(ms) {
    const d = new Date(ms);
    return d.toLocaleTimeString(lang === 'ko' ? 'ko-KR' : 'en-GB', { hour12: false });
  }
  function fullTime(ms) {
    if (typeof ms !== 'number') return '—';
    return new Date(ms).toLocaleString(lang === 'ko' ? 'ko-KR' : 'en-GB');
  }
  function nameOf(s) { return s === '0' ? t('coinbase') : s; }

  // ---------------------------------------------------------------- rendering, batched
  const dirty = new Set();
  let frame = 0;
  function mark(...parts) {
    for (const p of parts) dirty.add(p);
    if (!frame) frame = requestAnimationFrame(flush);
  }
  function flush() {
    frame = 0;
    const parts = [...dirty];
    dirty.clear();
    for (const p of parts) {
      try { RENDER[p](); } catch (e) { console.error('render', p, e); }
    }
  }
  const RENDER = {
    table: renderTable, select: renderSelect, net: renderNetwork, prop: renderPropagation,
    heights: renderHeights, activity: renderActivity, tree: renderTree, reorgs: renderReorgs,
    explorer: renderExplorer, detail: renderDetail,
  };
  const ALL = Object.keys(RENDER);

  // ---------------------------------------------------------------- node table
  function makeRow(addr) {
    const cells = {};
    const td = (field, cls) => (cells[field] = el('td', { 'data-field': field, class: cls }));
    const tr = el('tr', { 'data-node': addr });
    const addrCell = el('td', { class: 'addr' });
    const swatch = el('span', { class: 'swatch', 'aria-hidden': 'true' });
    const mining = el('span', { class: 'tag', hidden: true });
    addrCell.append(swatch, el('span', { text: addr }), mining);
    tr.append(addrCell, td('status'), td('length'), td('tip'), td('pending'), td('peers'), td('miner'), td('age'));
    const actions = el('td', { class: 'actions' });
    const btns = el('div', { class: 'btns' });
    const msg = el('span', { class: 'msg', 'data-field': 'message', role: 'status' });
    const buttons = {
      mine: el('button', { type: 'button', class: 'mine', 'data-action': 'mine' }),
      sync: el('button', { type: 'button', 'data-action': 'sync' }),
      stop: el('button', { type: 'button', 'data-action': 'stop', hidden: true }),
      start: el('button', { type: 'button', 'data-action': 'start', hidden: true }),
    };
    for (const [action, b] of Object.entries(buttons)) {
      b.addEventListener('click', () => nodeAction(addr, action));
      btns.append(b);
    }
    actions.append(btns, msg);
    tr.append(actions);
    return { tr, cells, buttons, msg, swatch, mining, busy: null };
  }

  function renderTable() {
    const tbody = $('node-rows');
    const order = nodeList();
    for (const [addr, r] of rows) {
      if (!order.includes(addr)) { r.tr.remove(); rows.delete(addr); }
    }
    order.forEach((addr, i) => {
      let r = rows.get(addr);
      if (!r) { r = makeRow(addr); rows.set(addr, r); }
      if (tbody.children[i] !== r.tr) tbody.insertBefore(r.tr, tbody.children[i] || null);
      fillRow(addr, r);
    });
    $('no-nodes').hidden = order.length > 0;
    $('add-node').hidden = !S.demo;
    $('demo-badge').hidden = !S.demo;
  }

  function fillRow(addr, r) {
    const v = S.nodes.get(addr);
    const st = v.status || {};
    const online = !!v.online;
    r.tr.classList.toggle('offline', !online);
    r.swatch.style.background = colorOf(addr);
    setText(r.cells.status, online ? t('online') : t('offline'));
    r.cells.status.className = online ? 'is-online' : 'is-offline';
    r.cells.status.title = !online && v.error ? v.error : '';
    setText(r.cells.length, num(st.length) ?? '—');
    setText(r.cells.tip, st.tip ? shortHash(st.tip, 12) : '—');
    r.cells.tip.title = st.tip || '';
    setText(r.cells.pending, num(st.pending) ?? '—');
    setText(r.cells.peers, v.status ? peerCount(v) : '—');
    setText(r.cells.miner, st.miner ?? '—');
    r.cells.miner.title = st.miner ?? '';
    setText(r.cells.age, st.height === 0 ? t('genesis') : typeof st.tip_time === 'number' ? ago(st.tip_time) : '—');
    r.mining.hidden = !(online && st.mining);
    setText(r.mining, t('miningNow'));
    for (const [action, b] of Object.entries(r.buttons)) {
      setText(b, r.busy === action ? t(busyKey(action)) : t(action));
      b.classList.toggle('busy', r.busy === action);
    }
    const managed = S.demo && v.managed;
    r.buttons.stop.hidden = !managed;
    r.buttons.start.hidden = !managed;
    r.buttons.mine.disabled = r.busy === 'mine';
    r.buttons.sync.disabled = r.busy === 'sync';
    r.buttons.stop.disabled = !!r.busy && r.busy !== 'mine' && r.busy !== 'sync' || !online;
    r.buttons.start.disabled = !!r.busy && r.busy !== 'mine' && r.busy !== 'sync' || online;
  }
  function busyKey(action) {
    return { mine: 'mining', sync: 'syncing', stop: 'stopping', start: 'starting' }[action];
  }
  function setText(e, v) {
    const s = String(v);
    if (e.textContent !== s) e.textContent = s;
  }

  function renderSelect() {
    const sel = $('tx-node');
    const keep = sel.value;
    const order = nodeList();
    const want = order.map((a) => [a, a + (S.nodes.get(a).online ? '' : ' — ' + t('offline'))]);
    const have = [...sel.options].map((o) => [o.value, o.textContent]);
    if (JSON.stringify(want) !== JSON.stringify(have)) {
      sel.replaceChildren(...want.map(([v, label]) => el('option', { value: v, text: label })));
      if (order.includes(keep)) sel.value = keep;
      else {
        const firstOnline = order.find((a) => S.nodes.get(a).online);
        if (firstOnline) sel.value = firstOnline;
      }
    }
  }

  // ---------------------------------------------------------------- calling the dashboard
  class ApiFail extends Error {
    constructor(body, status) {
      super((body && body.error) || 'HTTP ' + status);
      this.code = (body && body.code) || (status === 0 ? 'network' : 'generic');
      this.status = status;
    }
  }
  async function api(path, body, timeoutMs) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    let r;
    try {
      r = await fetch(path, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Chainsim-Token': TOKEN },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: ctl.signal,
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiFail({ error: t('err_network'), code: e.name === 'AbortError' ? 'timeout' : 'network' }, 0);
    } finally {
      clearTimeout(timer);
    }
    let data = null;
    try { data = await r.json(); } catch (_) { /* not JSON */ }
    if (!r.ok) throw new ApiFail(data, r.status);
    return data || {};
  }
  async function apiGet(path, timeoutMs = 8000) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    try {
      const r = await fetch(path, { signal: ctl.signal, cache: 'no-store' });
      let data = null;
      try { data = await r.json(); } catch (_) { /* not JSON */ }
      if (!r.ok) throw new ApiFail(data, r.status);
      return data;
    } catch (e) {
      if (e instanceof ApiFail) throw e;
      throw new ApiFail({ error: t('err_network'), code: 'network' }, 0);
    } finally {
      clearTimeout(timer);
    }
  }
  function failText(e, node) {
    const vars = { node: node || '', detail: e.message };
    switch (e.code) {
      case 'unreachable': return t('err_unreachable', vars);
      case 'timeout': return t('err_timeout', vars);
      case 'unknown_node': return t('err_unknown_node', vars) + (node ? ` (${node})` : '');
      case 'forbidden': return t('err_forbidden', vars);
      case 'invalid': return t('err_invalid', vars);
      case 'network': return t('err_network', vars);
      case 'not_demo': return t('err_not_demo', vars);
      default: return e.message;
    }
  }
  function say(target, kind, text) {
    target.className = target.className.replace(/\b(ok|bad|wait)\b/g, '').trim();
    target.classList.add('msg', kind);
    target.textContent = text;
    clearTimeout(target._fade);
    if (kind !== 'wait') target._fade = setTimeout(() => { target.textContent = ''; }, 15000);
  }

  const ACTION_TIMEOUT = { mine: 200000, sync: 70000, stop: 30000, start: 30000 };
  async function nodeAction(addr, action) {
    const r = rows.get(addr);
    if (!r || r.busy) return;
    r.busy = action;
    fillRow(addr, r);
    say(r.msg, 'wait', t(busyKey(action)));
    try {
      const res = await api(`/api/nodes/${encodeURIComponent(addr)}/${action}`, undefined, ACTION_TIMEOUT[action]);
      let text;
      if (action === 'mine') text = t('mined', { height: res.height ?? '?', txs: res.txs ?? 0 });
      else if (action === 'sync') text = t(res.replaced ? 'synced' : 'syncedSame', { length: res.length ?? '?' });
      else text = t(action === 'stop' ? 'stopped' : 'started');
      say(r.msg, 'ok', text);
    } catch (e) {
      say(r.msg, 'bad', failText(e, addr));
    } finally {
      r.busy = null;
      if (S.nodes.has(addr)) fillRow(addr, r);
    }
  }

  async function addNode() {
    const b = $('add-node'), msg = $('add-node-msg');
    b.disabled = true;
    say(msg, 'wait', t('adding'));
    try {
      const res = await api('/api/nodes', undefined, 30000);
      say(msg, 'ok', t('added', { node: res.node }));
    } catch (e) {
      say(msg, 'bad', failText(e));
    } finally {
      b.disabled = false;
    }
  }

  // ---------------------------------------------------------------- transaction form
  const FIELDS = ['sender', 'recipient', 'amount', 'node'];
  function fieldInput(f) { return $('tx-' + f); }
  function fieldMsg(f, text) {
    $('tx-' + f + '-msg').textContent = text || '';
    const input = fieldInput(f);
    if (text) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }
  // Mirrors the one name rule (primitives' normalize_name): trimmed, then 1 to 64 bytes
  // without control characters; the sender may not be the coinbase's "0".
  function checkName(v, isSender) {
    const s = v.trim();
    if (!s) return t('v_required');
    if (new TextEncoder().encode(s).length > 64) return t('v_long');
    if (/[\u0000-\u001f\u007f-\u009f]/.test(s)) return t('v_control');
    if (isSender && s === '0') return t('v_zero');
    return '';
  }
  function checkAmount(v) {
    const s = v.trim();
    if (!s) return t('v_required');
    if (!/^[0-9]+$/.test(s)) return t('v_amount');
    const n = BigInt(s);
    if (n < 1n) return t('v_amount');
    if (n > MAX_U64) return t('v_big');
    return '';
  }
  function validateForm(focus = true) {
    const errs = {
      sender: checkName(fieldInput('sender').value, true),
      recipient: checkName(fieldInput('recipient').value, false),
      amount: checkAmount(fieldInput('amount').value),
      node: fieldInput('node').value ? '' : t('v_node'),
    };
    for (const f of FIELDS) fieldMsg(f, errs[f]);
    const bad = FIELDS.find((f) => errs[f]);
    if (bad && focus) fieldInput(bad).focus();
    return !bad;
  }
  async function submitTx(ev) {
    ev.preventDefault();
    const msg = $('tx-msg');
    msg.textContent = '';
    if (!validateForm()) return;
    const node = fieldInput('node').value;
    const body = {
      sender: fieldInput('sender').value,
      recipient: fieldInput('recipient').value,
      amount: fieldInput('amount').value.trim(),
      node,
    };
    const button = $('tx-submit');
    button.disabled = true;
    button.textContent = t('sending');
    try {
      const res = await api('/api/tx', body, 15000);
      say(msg, 'ok', t('txSent', { node, txid: shortHash(res.txid, 10) }));
    } catch (e) {
      say(msg, 'bad', failText(e, node));
    } finally {
      button.disabled = false;
      button.textContent = t('sendTx');
    }
  }

  // ---------------------------------------------------------------- network graph
  function netLayout(order, w, h) {
    const pos = new Map();
    const cx = w / 2, cy = h / 2 - 6, rad = Math.min(w, h) / 2 - 48;
    order.forEach((a, i) => {
      if (order.length === 1) { pos.set(a, [cx, cy]); return; }
      const ang = -Math.PI / 2 + (2 * Math.PI * i) / order.length + (order.length === 2 ? Math.PI / 2 : 0);
      pos.set(a, [cx + rad * Math.cos(ang), cy + rad * Math.sin(ang)]);
    });
    return pos;
  }
  function renderNetwork() {
    const svg = $('net-svg');
    const w = Math.max(300, svg.clientWidth || 600), h = 190;
    svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    const order = nodeList();
    const pos = netLayout(order, w, h);
    const links = new Set();
    const kids = [];
    for (const a of order) {
      for (const p of S.nodes.get(a).peers || []) {
        if (!p || p.state !== 'connected' || typeof p.address !== 'string' || !pos.has(p.address)) continue;
        const key = [a, p.address].sort().join('|');
        if (links.has(key)) continue;
        links.add(key);
        const [x1, y1] = pos.get(a), [x2, y2] = pos.get(p.address);
        kids.push(sv('line', { class: 'net-link', x1, y1, x2, y2 }));
      }
    }
    for (const a of order) {
      const v = S.nodes.get(a);
      const [x, y] = pos.get(a);
      const g = sv('g', { class: 'net-node' + (v.online ? '' : ' off'), 'data-net-node': a });
      g.append(
        sv('circle', { class: 'ring', cx: x, cy: y, r: 26, stroke: colorOf(a) }),
        sv('circle', { class: 'body', cx: x, cy: y, r: 26, fill: colorOf(a) }),
        sv('text', { x, y }, portOf(a)),
        sv('text', { class: 'below', x, y: y + 40 },
          v.online ? `#${num(v.status?.height) ?? '?'}` : t('offline')),
        sv('title', {}, a),
      );
      kids.push(g);
    }
    svg.replaceChildren(...kids);
  }
  function pulse(addr) {
    const ring = document.querySelector(`[data-net-node="${CSS.escape(addr)}"] .ring`);
    if (!ring) return;
    ring.classList.remove('pulse');
    void ring.getBoundingClientRect();
    ring.classList.add('pulse');
  }

  function renderPropagation() {
    const table = $('prop-table');
    const order = nodeList();
    const items = [...S.arrivals.values()].sort((a, b) => b.first_at - a.first_at).slice(0, 6);
    $('no-prop').hidden = items.length > 0;
    if (!items.length) { table.replaceChildren(); return; }
    const head = el('tr', {}, el('th', { text: t('item') }), ...order.map((a) => {
      const th = el('th', { class: 'num' });
      th.append(el('span', { class: 'swatch', style: null }), portOf(a));
      th.firstChild.style.background = colorOf(a);
      return th;
    }));
    const body = items.map((r) => {
      const info = r.info || {};
      const label = r.kind === 'block'
        ? `${t('blockWord')} #${info.height ?? '?'} · ${shortHash(r.id, 8)}`
        : `${t('txWord')} ${nameOf(String(info.sender ?? '?'))} → ${info.recipient ?? '?'} (${info.amount ?? '?'})`;
      const tr = el('tr', {}, el('td', { text: label, title: r.id }));
      for (const a of order) {
        const at = r.at ? r.at[a] : undefined;
        let text = '—';
        if (typeof at === 'number') text = a === r.first_node ? t('first') : `+${Math.max(0, at - r.first_at)} ms`;
        tr.append(el('td', { class: 'num', text }));
      }
      return tr;
    });
    table.replaceChildren(el('thead', {}, head), el('tbody', {}, ...body));
  }

  // ---------------------------------------------------------------- height chart
  function renderHeights() {
    const svg = $('height-svg');
    const w = Math.max(300, svg.clientWidth || 600), h = 200;
    svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    const pad = { l: 36, r: 12, t: 10, b: 24 };
    const samples = S.heights;
    const order = nodeList();
    const tEnd = nowMs();
    const tStart = Math.max(samples.length ? samples[0].t : tEnd - 60000, tEnd - 10 * 60000);
    const span = Math.max(20000, tEnd - tStart);
    let maxH = 1;
    for (const s of samples) for (const v of Object.values(s.h || {})) if (typeof v === 'number') maxH = Math.max(maxH, v);
    const yMax = Math.max(2, maxH + 1);
    const X = (tm) => pad.l + ((tm - (tEnd - span)) / span) * (w - pad.l - pad.r);
    const Y = (v) => h - pad.b - (v / yMax) * (h - pad.t - pad.b);
    const kids = [];
    const step = Math.max(1, Math.ceil(yMax / 5));
    for (let v = 0; v <= yMax; v += step) {
      kids.push(sv('line', { class: 'axis', x1: pad.l, x2: w - pad.r, y1: Y(v), y2: Y(v) }));
      kids.push(sv('text', { class: 'axis-label', x: pad.l - 6, y: Y(v) + 4, 'text-anchor': 'end' }, v));
    }
    const minutes = Math.round(span / 60000);
    kids.push(sv('text', { class: 'axis-label', x: pad.l, y: h - 6 }, minutes >= 1 ? t('minAgo', { n: minutes }) : ''));
    kids.push(sv('text', { class: 'axis-label', x: w - pad.r, y: h - 6, 'text-anchor': 'end' }, t('now')));
    order.forEach((a, i) => {
      // Nodes at the same height would hide each other's lines: nudge each a little.
      const nudge = (i - (order.length - 1) / 2) * 2.5;
      let d = '', prev = null, lastY = null;
      for (const s of samples) {
        if (s.t < tEnd - span) continue;
        const v = s.h ? s.h[a] : null;
        if (typeof v !== 'number') { prev = null; continue; }
        const x = X(s.t).toFixed(1), y = (Y(v) + nudge).toFixed(1);
        d += prev === null ? `M${x},${y}h1` : `H${x}V${y}`;
        prev = v; lastY = y;
      }
      const live = S.nodes.get(a);
      if (prev !== null && live && live.online) d += `H${X(tEnd).toFixed(1)}`;
      if (d) kids.push(sv('path', { d, fill: 'none', stroke: colorOf(a), 'stroke-width': 2.5, 'stroke-linejoin': 'round', 'stroke-linecap': 'round', opacity: 0.9 }));
      if (lastY !== null && live && live.online) kids.push(sv('circle', { cx: X(tEnd), cy: lastY, r: 3.5, fill: colorOf(a) }));
    });
    svg.replaceChildren(...kids);
    $('height-legend').replaceChildren(...order.map((a) => {
      const i = el('i');
      i.style.background = colorOf(a);
      return el('span', {}, i, a);
    }));
  }

  // ---------------------------------------------------------------- activity
  function activityText(ev) {
    const d = ev.data || {};
    const via = d.from_peer ? ' ' + t('ev_via', { p: d.from_peer }) : '';
    switch (ev.kind) {
      case 'block': return (d.mined_here ? t('ev_block_here', { h: d.height }) : t('ev_block', { h: d.height })) + via;
      case 'tx': return t('ev_tx', { s: nameOf(String(d.sender ?? '?')), r: d.recipient ?? '?', a: d.amount ?? '?' }) + via;
      case 'reorg': return t('ev_reorg', { h: d.fork_height });
      case 'peer': return t('ev_peer', { a: d.address, s: d.state });
      case 'mining': return d.active ? t('ev_mining_on') : t('ev_mining_off');
      default: return null;
    }
  }
  function renderActivity() {
    const list = $('activity');
    const items = S.activity.slice(-40).reverse();
    list.replaceChildren(...items.map((ev) => {
      const li = el('li');
      const sw = el('span', { class: 'swatch' });
      sw.style.background = colorOf(ev.node);
      li.append(el('time', { text: clock(ev.at) }), el('span', { class: 'who' }, sw, portOf(ev.node)), el('span', { text: activityText(ev) }));
      return li;
    }));
    $('no-activity').hidden = items.length > 0;
  }

  // ---------------------------------------------------------------- fork tree
  function allBlocks() {
    const m = new Map(S.tree);
    for (const blocks of S.chains.values()) {
      for (const b of blocks) {
        if (b && typeof b.hash === 'string') {
          m.set(b.hash, { hash: b.hash, height: b.height, previous_hash: b.previous_hash, txs: Array.isArray(b.transactions) ? b.transactions.length : 0 });
        }
      }
    }
    return m;
  }
  function renderTree() {
    const svg = $('fork-svg');
    const blocks = allBlocks();
    const tips = new Map(); // hash -> [address]
    let best = null;
    for (const a of nodeList()) {
      const st = S.nodes.get(a).status;
      if (!st || typeof st.tip !== 'string') continue;
      if (!tips.has(st.tip)) tips.set(st.tip, []);
      tips.get(st.tip).push(a);
      if (blocks.has(st.tip)) {
        const hb = blocks.get(st.tip).height;
        if (!best || hb > best.h || (hb === best.h && tips.get(st.tip).length > tips.get(best.hash).length)) best = { hash: st.tip, h: hb };
      }
    }
    let maxH = 0;
    for (const b of blocks.values()) if (typeof b.height === 'number') maxH = Math.max(maxH, b.height);
    const minH = Math.max(0, maxH - 11);
    const visible = [...blocks.values()].filter((b) => typeof b.height === 'number' && b.height >= minH);
    const main = new Set();
    for (let h = best && best.hash; h && blocks.has(h); h = blocks.get(h).previous_hash) main.add(h);
    visible.sort((a, b) => a.height - b.height || (main.has(b.hash) - main.has(a.hash)) || (a.hash < b.hash ? -1 : 1));
    const lane = new Map(), used = new Map();
    let next = 1;
    for (const b of visible) {
      let l;
      if (main.has(b.hash)) l = 0;
      else {
        const pl = lane.get(b.previous_hash);
        const taken = used.get(b.height) || new Set();
        l = pl !== undefined && pl !== 0 && !taken.has(pl) ? pl : next++;
      }
      lane.set(b.hash, l);
      if (!used.has(b.height)) used.set(b.height, new Set());
      used.get(b.height).add(l);
    }
    const BW = 104, BH = 42, GX = 40, LANE = 96, PX = 16, PY = 14;
    const X = (b) => PX + (b.height - minH) * (BW + GX);
    const Yl = (l) => PY + l * LANE;
    const lanes = Math.max(1, next);
    const w = PX * 2 + (maxH - minH + 1) * (BW + GX);
    const h = PY + lanes * LANE + 10;
    svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    svg.setAttribute('width', w);
    svg.setAttribute('height', h);
    svg.style.minWidth = w + 'px';
    const kids = [];
    for (const b of visible) {
      const p = blocks.get(b.previous_hash);
      if (!p || !lane.has(p.hash)) continue;
      const x1 = X(p) + BW, y1 = Yl(lane.get(p.hash)) + BH / 2, x2 = X(b), y2 = Yl(lane.get(b.hash)) + BH / 2;
      const mx = (x1 + x2) / 2;
      kids.push(sv('path', { class: 'tree-edge' + (main.has(b.hash) ? '' : ' stale'), d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}` }));
    }
    for (const b of visible) {
      const x = X(b), y = Yl(lane.get(b.hash));
      const stale = !main.has(b.hash);
      const g = sv('g', { class: 'block-g', tabindex: 0, role: 'button', 'data-block': b.hash, 'aria-label': `#${b.height} ${b.hash}` });
      g.append(
        sv('rect', { class: 'block-rect' + (stale ? ' stale' : ''), x, y, width: BW, height: BH, rx: 8 }),
        sv('text', { class: 'h', x: x + 8, y: y + 17 }, `#${b.height}`),
        sv('text', { x: x + 8, y: y + 33 }, shortHash(b.hash, 10)),
        sv('text', { x: x + BW - 8, y: y + 17, 'text-anchor': 'end', fill: '#667085' }, `${b.txs ?? 0} tx`),
        sv('title', {}, b.hash),
      );
      const open = () => selectBlock(b.hash, (tips.get(b.hash) || [])[0] || null);
      g.addEventListener('click', open);
      g.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(); } });
      kids.push(g);
      const at = tips.get(b.hash) || [];
      at.forEach((a, i) => {
        const label = portOf(a);
        const tw = 10 + label.length * 7;
        const tx = x + 4 + i * (tw + 4), ty = y + BH + 6;
        const tag = sv('g', { class: 'tip-tag' });
        tag.append(
          sv('rect', { x: tx, y: ty, width: tw, height: 17, rx: 8, fill: colorOf(a), opacity: S.nodes.get(a).online ? 1 : 0.45 }),
          sv('text', { x: tx + tw / 2, y: ty + 12.5, 'text-anchor': 'middle' }, label),
          sv('title', {}, a),
        );
        kids.push(tag);
      });
    }
    svg.replaceChildren(...kids);
  }

  function renderReorgs() {
    const list = $('reorg-list');
    const items = [...S.reorgs.values()].sort((a, b) => b.id - a.id).slice(0, 10);
    $('no-reorgs').hidden = items.length > 0;
    list.replaceChildren(...items.map((r) => {
      const returned = Array.isArray(r.returned) ? r.returned : [];
      const li = el('li');
      li.append(el('div', {}, el('time', { text: clock(r.at) + ' · ' }),
        t('reorgLine', { node: r.node, h: r.fork_height ?? '?', d: (r.disconnected || []).length, c: (r.connected || []).length })));
      const ret = el('div', { class: 'returned' });
      if (returned.length) {
        ret.append(t('returned') + ' ');
        for (const txid of returned) {
          const info = S.txInfo.get(txid);
          const text = info ? `${nameOf(String(info.sender))} → ${info.recipient} (${info.amount})` : shortHash(String(txid), 10);
          ret.append(el('span', { title: String(txid), text }));
        }
      } else ret.append(t('noneReturned'));
      li.append(ret);
      return li;
    }));
  }

  // ---------------------------------------------------------------- explorer
  function renderExplorer() {
    const wrap = $('explorer-cols');
    wrap.replaceChildren(...nodeList().map((a) => {
      const blocks = (S.chains.get(a) || []).slice(-8).reverse();
      const sw = el('span', { class: 'swatch' });
      sw.style.background = colorOf(a);
      const col = el('div', { class: 'ex-col', 'data-explorer-node': a }, el('h3', {}, sw, a));
      if (!blocks.length) col.append(el('p', { class: 'empty', text: t('noBlocks') }));
      const ol = el('ol');
      for (const b of blocks) {
        const txs = Array.isArray(b.transactions) ? b.transactions.length : 0;
        const sel = S.selected && S.selected.hash === b.hash;
        const btn = el('button', { type: 'button', class: 'ex-block' + (sel ? ' selected' : ''), 'data-block': b.hash, title: b.hash },
          el('span', { class: 'h', text: '#' + b.height }),
          el('code', { text: shortHash(b.hash, 14) }),
          el('small', { text: `${txs} tx` }));
        btn.addEventListener('click', () => selectBlock(b.hash, a));
        ol.append(el('li', {}, btn));
      }
      col.append(ol);
      return col;
    }));
  }

  function findBlock(hash) {
    for (const [a, blocks] of S.chains) {
      const b = blocks.find((x) => x.hash === hash);
      if (b) return { block: b, node: a };
    }
    return null;
  }

  async function selectBlock(hash, node) {
    const found = findBlock(hash);
    S.selected = { hash, node: found ? found.node : node, block: found ? found.block : null, proof: null, loading: !found };
    mark('detail', 'explorer');
    $('block-detail').scrollIntoView({ behavior: 'smooth', block: 'nearest' });
    if (!found) {
      try {
        const q = node ? `?node=${encodeURIComponent(node)}` : '';
        const b = await apiGet(`/api/blocks/${encodeURIComponent(hash)}${q}`);
        if (S.selected && S.selected.hash === hash) { S.selected.block = b; S.selected.loading = false; }
      } catch (e) {
        if (S.selected && S.selected.hash === hash) { S.selected.error = failText(e, node); S.selected.loading = false; }
      }
      mark('detail');
    }
  }

  function renderDetail() {
    const box = $('block-detail');
    const sel = S.selected;
    if (!sel) { box.hidden = true; box.replaceChildren(); return; }
    box.hidden = false;
    const close = el('button', { type: 'button', text: t('close') });
    close.addEventListener('click', () => { S.selected = null; mark('detail', 'explorer'); });
    const b = sel.block;
    const head = el('div', { class: 'detail-head' },
      el('h3', { text: b ? t('blockTitle', { h: b.height }) + (sel.node ? ' · ' + t('seenOn', { node: sel.node }) : '') : t('loading') }), close);
    const kids = [head];
    if (sel.error) kids.push(el('p', { class: 'msg bad', text: sel.error }));
    if (b) {
      const dl = el('dl', { class: 'kv' });
      const row = (k, v) => dl.append(el('dt', { text: t(k) }), el('dd', {}, v));
      row('f_hash', hashWithZeros(b.hash));
      row('f_height', String(b.height ?? '—'));
      row('f_index', String(b.index ?? '—'));
      const prev = el('button', { type: 'button', class: 'link', text: String(b.previous_hash ?? '—') });
      prev.addEventListener('click', () => { if (typeof b.previous_hash === 'string') selectBlock(b.previous_hash, sel.node); });
      row('f_prev', prev);
      row('f_merkle', el('span', { class: 'hash', text: String(b.merkle_root ?? '—') }));
      row('f_time', fullTime(b.timestamp));
      row('f_target', hashWithZeros(b.target));
      row('f_bits', String(b.bits ?? '—'));
      row('f_nonce', String(b.nonce ?? '—'));
      row('f_size', String(b.size ?? '—'));
      row('f_version', String(b.version ?? '—'));
      kids.push(dl);
      kids.push(el('p', { class: 'hint', text: t('zerosHint') }));
      const txs = Array.isArray(b.transactions) ? b.transactions : [];
      kids.push(el('h3', { text: `${t('txs')} (${txs.length})` }));
      const tb = el('tbody');
      for (const tx of txs) {
        const pb = el('button', { type: 'button', text: t('showProof'), 'data-proof': String(tx.txid) });
        pb.addEventListener('click', () => showProof(String(tx.txid)));
        tb.append(el('tr', {},
          el('td', {}, el('code', { class: 'hash', text: shortHash(String(tx.txid), 16), title: String(tx.txid) })),
          el('td', { text: nameOf(String(tx.sender)) }),
          el('td', { text: String(tx.recipient) }),
          el('td', { class: 'num', text: String(tx.amount) }),
          el('td', {}, pb)));
      }
      kids.push(el('div', { class: 'table-wrap' }, el('table', { class: 'small' },
        el('thead', {}, el('tr', {}, el('th', { text: t('txid') }), el('th', { text: t('from') }), el('th', { text: t('to') }),
          el('th', { class: 'num', text: t('amount') }), el('th', { text: t('proof') }))), tb)));
      if (sel.proof) kids.push(proofBox(sel.proof));
    }
    box.replaceChildren(...kids);
  }

  async function showProof(txid) {
    const sel = S.selected;
    if (!sel) return;
    sel.proof = { txid, loading: true };
    mark('detail');
    try {
      const q = sel.node ? `?node=${encodeURIComponent(sel.node)}` : '';
      const res = await apiGet(`/api/tx/${encodeURIComponent(txid)}${q}`);
      const p = { txid, res };
      if (res && res.status === 'confirmed' && res.proof) p.ok = await verifyProof(txid, res.proof);
      if (S.selected === sel) sel.proof = p;
    } catch (e) {
      if (S.selected === sel) sel.proof = { txid, error: failText(e, sel.node) };
    }
    mark('detail');
  }

  function proofBox(p) {
    const box = el('div', { class: 'proof' + (p.error || p.ok === false ? ' bad' : '') });
    box.append(el('strong', { text: `${t('proof')} · ${shortHash(p.txid, 16)}` }));
    if (p.loading) { box.append(el('div', { text: t('loading') })); return box; }
    if (p.error) { box.append(el('div', { text: p.error })); return box; }
    const res = p.res || {};
    if (res.status !== 'confirmed' || !res.proof) { box.append(el('div', { text: t('pendingTx') })); return box; }
    const pr = res.proof;
    const dl = el('dl', { class: 'kv' });
    dl.append(el('dt', { text: t('proofIndex') }), el('dd', { text: String(pr.index) }));
    const ol = el('ol');
    for (const s of pr.siblings || []) ol.append(el('li', {}, el('code', { text: String(s) })));
    dl.append(el('dt', { text: t('siblings') }), el('dd', {}, (pr.siblings || []).length ? ol : '—'));
    dl.append(el('dt', { text: t('root') }), el('dd', {}, el('code', { text: String(pr.root) })));
    box.append(dl);
    if (p.ok === true) box.append(el('div', { text: t('verified') }));
    else if (p.ok === false) box.append(el('div', { text: t('notVerified') }));
    return box;
  }

  function hexBytes(h) {
    if (typeof h !== 'string' || !/^[0-9a-fA-F]{64}$/.test(h)) return null;
    const out = new Uint8Array(32);
    for (let i = 0; i < 32; i++) out[i] = parseInt(h.slice(i * 2, i * 2 + 2), 16);
    return out;
  }
  // As docs/API.md says: h = sha256(0xff || left || right), climbing by the index's bits.
  async function verifyProof(txid, proof) {
    if (!window.crypto || !crypto.subtle) return null;
    let h = hexBytes(txid);
    let idx = Number(proof.index);
    if (!h || !Number.isInteger(idx)) return false;
    for (const s of proof.siblings || []) {
      const sb = hexBytes(s);
      if (!sb) return false;
      const buf = new Uint8Array(65);
      buf[0] = 0xff;
      if (idx % 2 === 0) { buf.set(h, 1); buf.set(sb, 33); } else { buf.set(sb, 1); buf.set(h, 33); }
      h = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
      idx = Math.floor(idx / 2);
    }
    const hex = [...h].map((x) => x.toString(16).padStart(2, '0')).join('');
    return hex === String(proof.root).toLowerCase();
  }

  // ---------------------------------------------------------------- live feed
  function noteTxs(blocks) {
    for (const b of blocks || []) for (const tx of b.transactions || []) {
      if (tx && tx.txid) S.txInfo.set(tx.txid, { sender: tx.sender, recipient: tx.recipient, amount: tx.amount });
    }
  }
  function applySnapshot(s) {
    if (typeof s.now === 'number') S.skew = s.now - Date.now();
    S.demo = !!s.demo;
    S.nodes = new Map((s.nodes || []).map((v) => [v.address, v]));
    S.chains = new Map(Object.entries(s.chains || {}));
    for (const blocks of S.chains.values()) noteTxs(blocks);
    S.tree = new Map((s.tree || []).map((b) => [b.hash, b]));
    S.heights = s.heights || [];
    S.arrivals = new Map((s.arrivals || []).map((r) => [r.kind + ':' + r.id, r]));
    for (const r of S.arrivals.values()) if (r.kind === 'tx' && r.info) S.txInfo.set(r.id, r.info);
    S.reorgs = new Map((s.reorgs || []).map((r) => [r.id, r]));
    mark(...ALL);
  }
  const HANDLERS = {
    snapshot: applySnapshot,
    node(v) {
      const isNew = !S.nodes.has(v.address);
      S.nodes.set(v.address, v);
      mark('table', 'select', 'net', 'tree');
      if (isNew) mark('prop', 'heights', 'explorer');
    },
    removed(d) {
      S.nodes.delete(d.address);
      S.chains.delete(d.address);
      mark(...ALL);
    },
    chain(d) {
      S.chains.set(d.node, d.blocks || []);
      noteTxs(d.blocks);
      for (const b of d.blocks || []) {
        if (b && b.hash) S.tree.set(b.hash, { hash: b.hash, height: b.height, previous_hash: b.previous_hash, txs: (b.transactions || []).length });
      }
      if (S.selected && !S.selected.block) { const f = findBlock(S.selected.hash); if (f) S.selected.block = f.block; }
      mark('explorer', 'tree', 'detail');
    },
    heights(s) {
      S.heights.push(s);
      if (S.heights.length > 600) S.heights.splice(0, S.heights.length - 600);
      mark('heights');
    },
    arrival(r) {
      S.arrivals.set(r.kind + ':' + r.id, r);
      if (S.arrivals.size > 30) {
        const oldest = [...S.arrivals.entries()].sort((a, b) => a[1].first_at - b[1].first_at)[0];
        S.arrivals.delete(oldest[0]);
      }
      if (r.kind === 'tx' && r.info) S.txInfo.set(r.id, r.info);
      mark('prop');
    },
    reorg(r) { S.reorgs.set(r.id, r); mark('reorgs', 'tree'); },
    nodeevent(ev) {
      const v = S.nodes.get(ev.node);
      if (ev.kind === 'tip' && v && v.status) {
        // The next poll confirms it; showing it now makes the page feel instant.
        Object.assign(v.status, ev.data);
        mark('table', 'tree', 'net');
      }
      if (ev.kind === 'mining' && v && v.status) { v.status.mining = !!(ev.data && ev.data.active); mark('table'); }
      if (ev.kind === 'block') pulse(ev.node);
      if (activityText(ev) !== null) {
        S.activity.push(ev);
        if (S.activity.length > 100) S.activity.splice(0, S.activity.length - 100);
        mark('activity');
      }
    },
  };

  let es = null;
  function connect() {
    const live = $('live'), text = $('live-text');
    es = new EventSource('/api/events');
    es.onopen = () => { live.dataset.state = 'live'; text.dataset.i18n = 'live'; text.textContent = t('live'); };
    es.onerror = () => { live.dataset.state = 'down'; text.dataset.i18n = 'reconnecting'; text.textContent = t('reconnecting'); };
    for (const [kind, fn] of Object.entries(HANDLERS)) {
      es.addEventListener(kind, (e) => {
        let data;
        try { data = JSON.parse(e.data); } catch (_) { return; }
        try { fn(data); } catch (err) { console.error(kind, err); }
      });
    }
  }

  // ---------------------------------------------------------------- language
  function applyLang() {
    document.documentElement.lang = lang;
    document.title = t('title');
    for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
    for (const b of document.querySelectorAll('.lang button')) b.setAttribute('aria-pressed', String(b.dataset.lang === lang));
    // Field messages are in the old language: validate again only where one is shown.
    if (FIELDS.some((f) => $('tx-' + f + '-msg').textContent)) validateForm(false);
    mark(...ALL);
  }
  function setLang(l) {
    lang = l;
    try { localStorage.setItem('chainsim-lang', l); } catch (_) { /* storage may be disabled */ }
    applyLang();
  }

  function showFlash() {
    const q = new URLSearchParams(location.search);
    const code = q.get('flash');
    if (!code || !(('flash_' + code) in I18N.en)) return;
    const box = $('flash');
    box.textContent = t('flash_' + code, { node: q.get('node') || '' });
    box.classList.toggle('bad', /fail|blocked|unknown/.test(code));
    box.hidden = false;
    history.replaceState(null, '', location.pathname);
    setTimeout(() => { box.hidden = true; }, 10000);
  }

  function init() {
    for (const b of document.querySelectorAll('.lang button')) b.addEventListener('click', () => setLang(b.dataset.lang));
    $('tx-form').addEventListener('submit', submitTx);
    for (const f of FIELDS) fieldInput(f).addEventListener('input', () => fieldMsg(f, ''));
    $('add-node').addEventListener('click', addNode);
    applyLang();
    showFlash();
    connect();
    // Ages ("12 s ago") and the chart's time axis move even when nothing happens.
    setInterval(() => mark('table', 'heights'), 1000);
    let resizeTimer = 0;
    window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => mark('net', 'heights'), 150); });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
