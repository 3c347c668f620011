/* empmix-boot.js: count the visit from the first page view, before Python has started.

     <script src="/empmix-boot.js" data-token="TOKEN" data-config='{"api_host": "..."}'></script>

   It runs synchronously, never throws into the page and needs nothing else. It reads (or mints)
   the identity exactly as the SDK does, respects the consent choice, records one
   $mp_web_page_view in the SDK's queue under its own tab id and sends it at once (fetch with
   keepalive, in the next task, so that the page's parser goes on first). If the page goes away before Python is ready, it beacons what is still queued and
   an $mp_page_leave ($left_before_ready, $time_on_page_ms). EmpMix.init() adopts its tab,
   identity and queue through window.empmixBoot (empmix_web/handover.py).

   Each rule repeated here names the Python it repeats; tests/browser/test_boot_contract.py binds
   the two over every stored state the SDK can write (and hostile ones). The minified copy is what
   pages load (./build.sh setup: build/www/empmix-boot.js); this source stays readable. */
(() => {
  const VERSION = "0.2.0"; // version.VERSION (a test binds them)
  const DEVICE = "$device:"; // ids.DEVICE_PREFIX
  const SPACE = /^[ \t\n\r\v\f]+|[ \t\n\r\v\f]+$/g; // ids.WHITESPACE, as str.strip(WHITESPACE)
  // ids.ILLEGAL_WORDS (after lower()) and ids.ILLEGAL_EXACT
  const WORDS = /^(anonymous|guest|distinctid|distinct_id|id|not_authenticated|email|undefined|true|false|anon|nil|n\/a|na|unknown|<nil>)$/;
  const EXACT = /^(\[object Object]|NaN|None|none|null|0|-1|\[]|\{}|0{8}-0{4}-0{4}-0{4}-0{12})$/;
  const UTM = ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "utm_id"]; // campaigns.UTM_KEYS
  const CAMPAIGN = UTM.concat("gclid fbclid msclkid ttclid li_fat_id twclid dclid wbraid gbraid".split(" ")); // + CLICK_IDS
  const EXPIRE = "=; Max-Age=0; path=/; SameSite=Lax";
  const DIRECT = "$direct";
  const doc = document, loc = location, nav = navigator;
  const now = Date.now();
  let store, persistent = 1, readable = 1;

  // storage.Storage: a write the browser refuses leaves no older copy behind
  const get = key => { try { return readable ? store.getItem(key) : null; } catch {} };
  const drop = key => { try { localStorage.removeItem(key); } catch {} };
  const put = (key, value) => { // no store while cookieless: then nothing is touched
    try { store.setItem(key, value); return 1; } catch { if (store) persistent = 0, drop(key); }
  };

  // compat.loads_bounded: stored values are data; too long, too deep or malformed reads as null
  const size = text => [...text].length; // Python's len(): code points
  const over = (text, max) => text.length > max && size(text) > max;
  const tooDeep = text => { // compat.nesting(text) > MAX_DEPTH (24), for valid JSON
    text = text.replace(/"(\\.|[^"\\])*"/g, "");
    for (let i = 24; i-- && /[[{]/.test(text);) text = text.replace(/[[{][^[\]{}]*[\]}]/g, "");
    return /[[{]/.test(text);
  };
  const load = (text, max) => {
    if (typeof text == "string" && !over(text, max) && !tooDeep(text)) try { return JSON.parse(text); } catch {}
  };
  const isMap = value => value && typeof value == "object" && !Array.isArray(value);

  // ids.illegal_id_reason(id) is None / ids.user_id_problem(id) is None
  const listed = value => WORDS.test(value.toLowerCase()) || EXACT.test(value);
  const legal = id => {
    let bare = id.replace(SPACE, ""), candidates = [bare], quote = bare[0];
    if (!bare || over(id, 255) || id.includes("\0")) return;
    if (bare.length > 1 && quote == bare.at(-1) && (quote == "'" || quote == '"')) candidates.push(bare.slice(1, -1).replace(SPACE, ""));
    if (bare.startsWith(DEVICE)) {
      if (!(quote = bare.slice(8).replace(SPACE, ""))) return;
      candidates.push(quote);
    }
    return !candidates.some(listed);
  };
  // ids.user_id_problem: never a $device: or $cookieless id
  const userId = value => value == null || (typeof value == "string" && !/^\$(device:|cookieless)/.test(value) && legal(value));
  const identity = raw => { // identity.parse_identity
    const data = load(raw, 4096) || {}, id = data.distinct_id, device = data.$device_id, user = data.$user_id;
    if (typeof id == "string" && legal(id) && typeof device == "string" && device && !over(device, 255) &&
        userId(user) && userId(data.$alias) && id == (user == null ? DEVICE + device : user)) return data;
  };

  // ids.uuid4, sessions.uuid7, records.InsertIds: hex of random bytes
  const hex = n => [...crypto.getRandomValues(new Uint8Array(n))].map(b => (b | 256).toString(16).slice(1)).join("");
  const uuid = (h, version) => h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + version + h.slice(13, 16) + "-" +
                               "89ab"[parseInt(h[16], 16) & 3] + h.slice(17, 20) + "-" + h.slice(20, 32);

  // storage.CookieJar, percent.unquote (a malformed escape keeps the text as it is)
  const unquote = text => { try { return decodeURIComponent(text); } catch { return text; } };
  const readCookie = name => {
    for (let part of cookies().split(";")) {
      const at = (part = part.replace(SPACE, "")).indexOf("=");
      if (at >= 0 && part.slice(0, at) == name) return over((part = part.slice(at + 1)), 4096) ? null : unquote(part);
    }
  };
  const parents = host => { // storage.parent_domains
    const parts = host.split("."), out = [];
    if (parts[1] != null && !host.includes(":") && !parts.every(p => /^\d+$/.test(p)))
      for (let i = 1; i < parts.length - 1; i++) out.push("." + parts.slice(i).join("."));
    return out;
  };
  const cookies = () => { try { return doc.cookie; } catch { return ""; } }; // sandboxed frames throw
  const setCookie = text => { try { return (doc.cookie = text); } catch {} };
  const writeCookie = (name, value, domain, secure) => { // CookieJar.set: shadowing copies expire first
    const domains = parents(loc.hostname), keep = domain || "";
    if (keep) setCookie(name + EXPIRE);
    if (domain && !domains.includes(domain)) domains.push(domain);
    for (const d of domains) if (d != keep) setCookie(name + EXPIRE + "; domain=" + d);
    setCookie(name + "=" + encodeURIComponent(value) + "; Max-Age=31536000; path=/; SameSite=Lax" +
              (domain ? "; domain=" + domain : "") + (secure ? "; Secure" : ""));
  };

  // campaigns.domain_of, for what document.referrer can be: "" or a serialized URL
  const domainOf = url => (url && new URL(url).hostname) || DIRECT;

  try {
    const script = doc.currentScript, token = script.dataset.token;
    if (!/^[\w.-]{1,128}$/.test(token)) return; // validation.is_token
    const config = Object(JSON.parse(script.dataset.config || "{}"));
    const state = (window.empmixBoot = { token, config });
    const prefix = "empmix_" + token + "_";
    // consent.Consent: "always" reads nothing; "until_consent" reads only the choice until it is "in"
    const mode = config.cookieless, always = mode == "always";
    try { // storage.Storage's probe: where a write is refused (or the getter throws), nothing is read
      if (!always) {
        (store = localStorage).setItem("empmix_probe", 1);
        if (store.getItem("empmix_probe") != 1) throw 0;
        store.removeItem("empmix_probe");
      }
    } catch { persistent = readable = 0; }
    const choice = get(prefix + "consent");
    if (mode != "until_consent" && (choice == "out" || (config.opt_out_by_default && choice != "in")))
      return (state.out = true);
    const cookieless = always || (mode == "until_consent" && choice != "in");
    if (cookieless) (store = 0), (persistent = 1); // memory only, as the SDK's storage is then

    // IdentityStore.load: a valid cookie wins, then localStorage, else a new device
    const secure = config.secure_cookie == null ? loc.protocol == "https:" : config.secure_cookie;
    const domain = (config.cookie_domain ?? (config.cross_subdomain_cookie && parents(loc.hostname).reverse().find(
      d => (setCookie("empmix_probe=1; path=/; domain=" + d), cookies().includes("empmix_probe=1")) &&
           setCookie("empmix_probe" + EXPIRE + "; domain=" + d)))) || null; // storage.probe_cookie_domain
    const key = prefix + "identity", name = "empmix_" + token, cookie = cookieless ? null : readCookie(name);
    const stored = get(key);
    let ident = cookieless ? { distinct_id: "$cookieless" } : identity(cookie), raw = cookie; // ids.COOKIELESS
    if (ident) {
      if (stored != raw) put(key, raw);
    } else {
      if (!(ident = identity((raw = stored)))) {
        const device = uuid(hex(16), 4);
        ident = { distinct_id: DEVICE + device, $device_id: device, $user_id: null, state: "anonymous" };
        put(key, (raw = JSON.stringify(ident)));
      }
      writeCookie(name, raw, domain, secure);
    }

    // sessions.Sessions.touch
    const sessionKey = prefix + "session";
    let session = load(get(sessionKey), 512) || {};
    if (typeof session.id != "string" || size(session.id) != 36 || !Number.isFinite(session.start) ||
        !Number.isFinite(session.last) || now - session.last > (config.session_timeout_ms || 18e5) ||
        now - session.start > (config.session_max_ms || 864e5) || session.start > now + 6e4)
      session = { id: uuid(now.toString(16).padStart(12, "0") + hex(10), 7), start: now, last: 0 };
    const touched = { id: session.id, start: session.start, last: now }; // what a cookieless SDK takes over
    if (now - session.last >= 1e3) put(sessionKey, JSON.stringify(touched));

    // context.PageContext and campaigns: referrer, campaign parameters, first touch
    const marketing = config.track_marketing !== false, referrer = doc.referrer, url = loc.href, campaign = {};
    let supers = load(get(prefix + "props"), 262144);
    supers = isMap(supers) ? supers : {};
    if (marketing) {
      const found = {}; // campaigns.query_params: the first value of each parameter
      for (const part of url.split("#")[0].split("?").slice(1).join("?").split("&")) {
        const [name, ...value] = part.split("="), key = unquote(name.replace(/\+/g, " "));
        if (CAMPAIGN.includes(key) && !(key in found)) found[key] = unquote(value.join("=").replace(/\+/g, " "));
      }
      for (const k in found) if (found[k]) campaign[k] = [...found[k]].slice(0, 255).join("");
      const touch = "$initial_referrer" in supers ? {} : { $initial_referrer: referrer || DIRECT, $initial_referring_domain: domainOf(referrer) };
      if (!UTM.some(k => "initial_" + k in supers)) for (const k of UTM) if (campaign[k]) touch["initial_" + k] = campaign[k];
      supers = { ...touch, ...supers }; // what the SDK registers at start-up
    }

    // records.RecordFactory.event, queued like queue.OutboundQueue.push
    const tab = hex(6), ids = hex(10), queue = [];
    const record = (event, own) => {
      const p = {
        token, distinct_id: ident.distinct_id, $device_id: ident.$device_id, mp_lib: "empmix-web", $lib_version: VERSION,
        ...(ident.$user_id != null && { $user_id: ident.$user_id }),
        time: Date.now(), $insert_id: ids + (queue.length + 1).toString(16).padStart(12, "0"),
        $screen_width: screen.width, $screen_height: screen.height,
        ...(marketing ? { $referrer: referrer || DIRECT, $referring_domain: domainOf(referrer) } : { $referrer: referrer }),
        $current_url: url, ...campaign, $session_id: session.id, ...(!persistent && { $persistence: "memory" }),
        ...supers, ...own,
      };
      const r = { id: p.$insert_id, key: prefix + "q_" + tab + "_" + String(queue.push(0)).padStart(10, "0") + "e" };
      if (!put(r.key, (r.body = JSON.stringify({ event, properties: p })))) {
        r.key = 0; // kept in memory (the beacon still carries it); a refused write says so
        if (!persistent) r.body = JSON.stringify({ event, properties: { ...p, $persistence: "memory" } });
      }
      return (queue[queue.length - 1] = r);
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
    setTimeout(() => { // a task of its own: neither the send nor the lock holds up the page's parser
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
