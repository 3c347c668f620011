/* empmix-boot.js: count the visit from the first page view, before Python has started.

     <script src="/empmix-boot.js" data-token="TOKEN" data-config='{"api_host": "..."}'></script>

   Synchronously, it reads (or mints) the identity exactly as the SDK does, respects the consent
   choice and records one $mp_web_page_view in the SDK's queue under a tab id of its own; in the
   next task (the page's parser goes on first) it sends it (fetch with keepalive) and takes the
   tab's Web Lock. If the page goes away before Python is ready, it beacons what is still queued
   and an $mp_page_leave ($left_before_ready, $time_on_page_ms). It never throws into the page.
   EmpMix.init() adopts its tab, identity and queue through window.empmixBoot (handover.py).

   Each rule repeated here names the Python it repeats; tests/browser/test_boot_contract.py binds
   the two over every stored state the SDK can write (and hostile ones). What it leaves to the
   SDK: expiring cookies that shadow the identity cookie (CookieJar.set) is init()'s job. The
   minified copy is what pages load (./build.sh setup: build/www/empmix-boot.js). */
(() => {
  const VERSION = "0.2.0"; // version.VERSION (a test binds them)
  const DEVICE = "$device:"; // ids.DEVICE_PREFIX
  const SPACE = /^[ \t\n\r\v\f]+|[ \t\n\r\v\f]+$/g; // ids.WHITESPACE, as str.strip(WHITESPACE)
  // ids.ILLEGAL_WORDS (after lower()) and ids.ILLEGAL_EXACT
  const WORDS = /^(anonymous|guest|distinctid|distinct_id|id|not_authenticated|email|undefined|true|false|anon|nil|n\/a|na|unknown|<nil>)$/;
  const EXACT = /^(\[object Object]|NaN|None|none|null|0|-1|\[]|\{}|0{8}-0{4}-0{4}-0{4}-0{12})$/;
  const UTM = "source medium campaign content term id".split(" ").map(k => "utm_" + k); // campaigns.UTM_KEYS
  const CAMPAIGN = UTM.concat("gclid fbclid msclkid ttclid li_fat_id twclid dclid wbraid gbraid".split(" ")); // + CLICK_IDS
  const EXPIRE = "=; Max-Age=0; path=/; SameSite=Lax", PROBE = "empmix_probe";
  const doc = document, loc = location, nav = navigator, now = Date.now();
  let store, persistent = 1, readable = 1, writeCookie;

  const strip = text => text.replace(SPACE, "");
  const over = (text, max) => text.length > max && [...text].length > max; // len(): code points
  // storage.Storage: a write the browser refuses leaves no older copy behind
  const get = key => { try { return readable && store.getItem(key); } catch {} };
  const put = (key, value) => {
    try { return store.setItem(key, value), 1; } catch { if (store) persistent = 0, drop(key); }
  };
  const drop = key => { try { localStorage.removeItem(key); } catch {} };
  // compat.loads_bounded: stored values are data; too long, deeper than MAX_DEPTH (24) or malformed is null
  const deep = (value, depth) => value && typeof value == "object" &&
    (depth > 23 || Object.values(value).some(v => deep(v, depth + 1)));
  const load = (text, max) => { try { if (!over(text, max) && !deep((text = JSON.parse(text)), 0)) return text; } catch {} };
  const isMap = value => value && typeof value == "object" && !Array.isArray(value);

  // ids.illegal_id_reason(id) is None; user: ids.user_id_problem(id) is None (never $device: or $cookieless)
  const legal = (id, user) => {
    const bare = strip(id), quote = bare[0], candidates = [bare];
    if (user && /^\$(device:|cookieless)/.test(id)) return;
    if (!bare || over(id, 255) || id.includes("\0")) return;
    if (bare[1] && quote == bare.at(-1) && (quote == "'" || quote == '"')) candidates.push(strip(bare.slice(1, -1)));
    bare.startsWith(DEVICE) && candidates.push(strip(bare.slice(8)) || "0"); // "0": an empty device id is illegal
    return !candidates.some(c => WORDS.test(c.toLowerCase()) || EXACT.test(c));
  };
  const userId = value => value == null || (typeof value == "string" && legal(value, 1));
  const identity = raw => { // identity.parse_identity
    const data = load(raw, 4096) || {}, id = data.distinct_id, device = data.$device_id, user = data.$user_id;
    if (typeof id == "string" && legal(id) && typeof device == "string" && device && !over(device, 255) &&
        userId(user) && userId(data.$alias) && id == (user == null ? DEVICE + device : user)) return data;
  };

  // ids.uuid4, sessions.uuid7, records.InsertIds: hex of random bytes
  const hex = n => [...crypto.getRandomValues(new Uint8Array(n))].map(b => (b | 256).toString(16).slice(1)).join("");
  const uuid = (h, version) => h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + version + h.slice(13, 16) + "-" +
                               "89ab"[parseInt(h[16], 16) & 3] + h.slice(17, 20) + "-" + h.slice(20, 32);

  // percent.unquote: a malformed escape keeps the text as it is
  const unquote = text => { try { return decodeURIComponent(text); } catch { return text; } };
  const cookies = () => { try { return doc.cookie; } catch { return ""; } }; // sandboxed frames throw
  const setCookie = text => { try { doc.cookie = text; } catch {} };
  const parents = host => { // storage.parent_domains
    const parts = host.split("."), out = [];
    if (parts[1] != null && !host.includes(":") && !parts.every(p => /^\d+$/.test(p)))
      for (let i = 1; i < parts.length - 1; i++) out.push("." + parts.slice(i).join("."));
    return out;
  };
  const probeDomain = () => parents(loc.hostname).reverse().find(d => // storage.probe_cookie_domain
    (setCookie(PROBE + "=1; path=/; domain=" + d), cookies().includes(PROBE + "=1")) && !setCookie(PROBE + EXPIRE + "; domain=" + d));
  const setIdentityCookie = (name, value, domain, secure) => { // CookieJar.set: shadowing copies expire first
    const domains = parents(loc.hostname), keep = domain || "";
    if (keep) setCookie(name + EXPIRE);
    if (domain && !domains.includes(domain)) domains.push(domain);
    for (const d of domains) if (d != keep) setCookie(name + EXPIRE + "; domain=" + d);
    setCookie(name + "=" + encodeURIComponent(value) + "; Max-Age=31536000; path=/; SameSite=Lax" +
              (domain ? "; domain=" + domain : "") + (secure ? "; Secure" : ""));
  };
  // campaigns.domain_of, for what document.referrer can be: "" or a serialized URL
  const domainOf = url => (url && new URL(url).hostname) || "$direct";

  try {
    const script = doc.currentScript, token = script.dataset.token;
    if (!/^[\w.-]{1,128}$/.test(token)) return; // validation.is_token
    const config = Object(JSON.parse(script.dataset.config || "{}"));
    const state = (window.empmixBoot = { token, config });
    const prefix = "empmix_" + token + "_", name = "empmix_" + token, key = prefix + "identity";
    // consent.Consent: "always" reads nothing; "until_consent" reads only the choice until it is "in"
    const mode = config.cookieless, always = mode == "always";
    try { // storage.Storage's probe: where a write is refused (or the getter throws), nothing is read
      if (!always) {
        (store = localStorage).setItem(PROBE, 1);
        if (store.getItem(PROBE) != 1) throw 0;
        store.removeItem(PROBE);
      }
    } catch { persistent = readable = 0; }
    const choice = get(prefix + "consent");
    if (mode != "until_consent" && (choice == "out" || (config.opt_out_by_default && choice != "in")))
      return (state.out = true);
    const cookieless = always || (mode == "until_consent" && choice != "in");
    if (cookieless) store = 0, persistent = 1; // memory only, as the SDK's storage is then

    // IdentityStore.load: a valid cookie wins, then localStorage, else a new device; storage.CookieJar.get
    let raw = cookieless ? 0 : cookies().split(";").map(strip).find(c => c.startsWith(name + "="));
    raw = raw && !over((raw = raw.slice(name.length + 1)), 4096) && unquote(raw);
    let ident = cookieless ? { distinct_id: "$cookieless" } : identity(raw); // ids.COOKIELESS
    if (ident) {
      if (get(key) != raw) put(key, raw);
    } else {
      if (!(ident = identity((raw = get(key))))) {
        const device = uuid(hex(16), 4);
        ident = { distinct_id: DEVICE + device, $device_id: device, $user_id: null, state: "anonymous" };
        put(key, (raw = JSON.stringify(ident)));
      }
      writeCookie = setIdentityCookie; // in the next task: cookie writes and probes cross to the browser process
    }

    // sessions.Sessions.touch
    const sessionKey = prefix + "session";
    let session = load(get(sessionKey), 512) || {};
    if (typeof session.id != "string" || [...session.id].length != 36 || !Number.isFinite(session.start) ||
        !Number.isFinite(session.last) || now - session.last > (config.session_timeout_ms || 18e5) ||
        now - session.start > (config.session_max_ms || 864e5) || session.start > now + 6e4)
      session = { id: uuid(now.toString(16).padStart(12, "0") + hex(10), 7), start: now, last: 0 };
    const touched = { id: session.id, start: session.start, last: now }; // what a cookieless SDK takes over
    if (now - session.last >= 1e3) put(sessionKey, JSON.stringify(touched));

    // context.PageContext and campaigns: referrer, campaign parameters, first touch
    const marketing = config.track_marketing !== false, referrer = doc.referrer, campaign = {}, found = {};
    let supers = load(get(prefix + "props"), 262144);
    supers = isMap(supers) ? supers : {};
    if (marketing) {
      // campaigns.query_params: the first value of each parameter
      for (const part of loc.search.slice(1).split("&")) {
        const [k, ...v] = part.split("=").map(s => unquote(s.replace(/\+/g, " ")));
        k in found || (found[k] = [...v.join("=")].slice(0, 255).join(""));
      }
      for (const k of CAMPAIGN) if (found[k]) campaign[k] = found[k];
      const touch = "$initial_referrer" in supers ? {} : { $initial_referrer: referrer || "$direct", $initial_referring_domain: domainOf(referrer) };
      if (!UTM.some(k => "initial_" + k in supers)) for (const k of UTM) if (campaign[k]) touch["initial_" + k] = campaign[k];
      supers = { ...touch, ...supers }; // what the SDK registers at start-up
    }

    // records.RecordFactory.event, queued like queue.OutboundQueue.push
    const tab = hex(6), ids = hex(10), queue = [];
    const record = (event, own) => {
      const n = queue.push(0), p = {
        token, distinct_id: ident.distinct_id, $device_id: ident.$device_id, mp_lib: "empmix-web", $lib_version: VERSION,
        ...(ident.$user_id != null && { $user_id: ident.$user_id }),
        time: Date.now(), $insert_id: ids + n.toString(16).padStart(12, "0"),
        $screen_width: screen.width, $screen_height: screen.height,
        ...(marketing ? { $referrer: referrer || "$direct", $referring_domain: domainOf(referrer) } : { $referrer: referrer }),
        $current_url: loc.href, ...campaign, $session_id: session.id, ...supers, ...own,
      };
      const body = () => JSON.stringify({ event, properties: persistent ? p : { ...p, $persistence: "memory" } });
      const r = (queue[n - 1] = { id: p.$insert_id, key: prefix + "q_" + tab + "_" + String(n).padStart(10, "0") + "e" });
      if (!put(r.key, (r.body = body()))) r.key = 0, (r.body = body()); // kept in memory: the beacon still carries it
      return r;
    };
    const view = record("$mp_web_page_view", isMap(config.pageview_properties) && config.pageview_properties);
    Object.assign(state, { tab: cookieless ? null : tab, device: ident.$device_id, pageview: view.id, session: touched });

    // wire.url and wire.encode_batch; wire.outcome for one record: kept only if the server asks to retry
    let target = (config.api_host || loc.origin).replace(/\/+$/, "") + "/" +
                 ((config.api_routes || {}).track || "track/").replace(/^\/+/, "");
    target += (target.includes("?") ? "&" : "?") + "verbose=1";
    const form = records => new URLSearchParams({ data: "[" + records.map(r => r.body) + "]" });
    addEventListener("pagehide", () => {
      if (!state.ready) try { // before the SDK took over: it has its own page-hide delivery
        record("$mp_page_leave", { $left_before_ready: true, $time_on_page_ms: Math.round(performance.now()) });
        nav.sendBeacon(target, form(queue.filter(r => !r.sent)));
        nav.locks || cookieless || drop(prefix + "alive_" + tab);
      } catch {}
    });
    setTimeout(() => { // a task of its own: neither the cookie, the send nor the lock holds up the page's parser
      // IdentityStore: the cookie mirrors what was kept or minted
      writeCookie && writeCookie(name, raw, config.cookie_domain ?? (config.cross_subdomain_cookie && probeDomain()),
                                 config.secure_cookie ?? loc.protocol == "https:");
      // tabs.TabCoordinator: this tab's Web Lock (or heartbeat) until the page goes
      cookieless || (nav.locks ? nav.locks.request(prefix + "tab_" + tab, () => new Promise(() => {})).catch(() => {})
                               : put(prefix + "alive_" + tab, "" + now));
      fetch(target, { method: "POST", body: form([view]), keepalive: true, credentials: "omit" }).then(reply => {
        const s = reply.status;
        if (s < 500 && s != 408 && s != 429) view.key && drop(view.key, (view.sent = 1));
      }, () => {});
    });
  } catch (e) {
    console.warn("empmix-boot:", e);
  }
})();
