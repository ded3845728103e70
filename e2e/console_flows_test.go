package e2e

import (
	"encoding/base64"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The console flows of TestConsoleBrowser that change things: what the root
// user does, what a restricted user is refused, and configuring a new server.

// consoleRoot: the root user does every kind of change.
func consoleRoot(t *testing.T, fx *consoleFixture) {
	b, srv, base, shots, auditPath, signIn := fx.b, fx.srv, fx.base, fx.shots, fx.auditPath, fx.signIn
	c := srv.client(t)
	tb := b.tab(t)
	tb.do(chromedp.Navigate(base + "/console/"))
	tb.untilText("main h1", "Sign in")
	tb.screenshot(shots, "console-signin")
	signIn(tb, base, srv.AccessKey, srv.SecretKey)

	// Overview: status, key counts and, after two scrapes, charts.
	tb.untilText("#service-status", "Running")
	tb.untilText("[data-state=Enabled]", "2")
	// Traffic for the charts: some answers, some refusals. Regenerating
	// the documentation's screenshots spreads it over a few readings
	// so that the charts have a shape.
	rounds := 1
	if os.Getenv("KEYWARD_SCREENSHOTS") != "" {
		rounds = 12
	}
	for r := 0; r < rounds; r++ {
		for i := 0; i < 20+15*(r%3); i++ {
			c.do("GET", "/kms/keys", nil)
			c.do("GET", "/kms/keys/nope", nil)
		}
		if r+1 < rounds {
			time.Sleep(2 * time.Second)
		}
	}
	tb.until("the traffic charts", "document.querySelectorAll('.chart polyline').length >= 3")
	tb.screenshot(shots, "console-overview")

	// Keyboard: the page's heading has the focus; going back goes
	// through the navigation, the header and to the skip link (with a
	// visible focus ring), which brings the focus to the page again.
	if got := evalIn[string](tb, "document.activeElement.tagName"); got != "H1" {
		t.Errorf("after sign-in the focus is on %s, want the page's heading", got)
	}
	var order []string
	for i := 0; i < 8; i++ {
		tb.do(chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift)))
		order = append(order, evalIn[string](tb, "document.activeElement.textContent.trim()"))
	}
	if want := []string{"Service", "Encrypt / decrypt", "Aliases", "Keys", "Overview", "Sign out", "Keyward", "Skip to content"}; !slices.Equal(order, want) {
		t.Errorf("Shift+Tab order %q, want %q", order, want)
	}
	if got := evalIn[string](tb, "getComputedStyle(document.activeElement).outlineStyle"); got == "none" {
		t.Error("the focused skip link has no visible outline")
	}
	tb.do(chromedp.KeyEvent(kb.Enter))
	if got := evalIn[string](tb, "document.activeElement.id"); got != "main" {
		t.Errorf("the skip link moved the focus to %q, want main", got)
	}

	// Create a key with a tag, and find it in the list.
	tb.open(base, "#/keys/new", "Create key")
	tb.fill("input[name=key_id]", "console-key")
	tb.fill("textarea[name=description]", "made in the console")
	tb.fill("textarea[name=tags]", "env=test\nteam=ops")
	tb.click("main form button[type=submit]")
	tb.untilText("#key-state", "Enabled")
	tb.open(base, "#/keys", "Keys")
	tb.untilText("#key-table", "console-key")
	tb.untilText("#key-table", "made in the console")
	tb.fill("input[name=q]", "console")
	tb.do(chromedp.KeyEvent(kb.Enter))
	tb.until("a search for console", "location.hash.includes('q=console') && document.querySelectorAll('#key-table tbody tr').length === 1")
	tb.screenshot(shots, "console-keys")

	keyState := func() map[string]any {
		t.Helper()
		st, m, raw := c.do("GET", "/kms/keys/console-key", nil)
		if st != 200 {
			t.Fatalf("describe: %d %s", st, short(raw))
		}
		return m["key_metadata"].(map[string]any)
	}
	tb.open(base, "#/keys/console-key", "Key console-key")
	tb.untilText("#key-state", "Enabled")
	if tags := keyState()["tags"].(map[string]any); tags["env"] != "test" || tags["team"] != "ops" {
		t.Errorf("tags after create: %v", tags)
	}

	// Disable, enable.
	tb.click("#disable-key")
	tb.untilText("#key-state", "Disabled")
	if s := keyState()["key_state"]; s != "Disabled" {
		t.Errorf("after Disable the server says %v", s)
	}
	tb.click("#enable-key")
	tb.untilText("#key-state", "Enabled")
	if s := keyState()["key_state"]; s != "Enabled" {
		t.Errorf("after Enable the server says %v", s)
	}

	// Rotate now (confirmed in a dialog), then a rotation schedule.
	tb.click("#rotate-key")
	tb.click("dialog button[value=ok]")
	tb.untilText("#key-version", "2")
	if v := keyState()["key_version"]; v != float64(2) {
		t.Errorf("after Rotate the server says version %v", v)
	}
	tb.click("#rotation-enabled")
	tb.fill("#rotation-period", "90")
	tb.click("form:has(#rotation-period) button[type=submit]")
	tb.untilText("#key-messages", "every 90 days")
	if m := keyState(); m["rotation_enabled"] != true || m["rotation_period_days"] != float64(90) {
		t.Errorf("rotation schedule on the server: %v, %v days", m["rotation_enabled"], m["rotation_period_days"])
	}

	// A tag and an alias.
	tb.fill("#tag-key", "owner")
	tb.fill("#tag-value", "console")
	tb.click("form:has(#tag-key) button[type=submit]")
	tb.untilText("#tag-table", "owner")
	tb.fill("#new-alias", "alias/console")
	tb.click("form:has(#new-alias) button[type=submit]")
	tb.untilText("#alias-list", "alias/console")
	tb.screenshot(shots, "console-key")

	// Schedule deletion: the button stays disabled until the id is typed.
	tb.click("#schedule-deletion")
	tb.fill("#confirm-key-id", "console-ke")
	if !evalIn[bool](tb, "document.querySelector('dialog button[value=ok]').disabled") {
		t.Error("the deletion can be confirmed before the key id is typed in full")
	}
	tb.do(chromedp.SendKeys("#confirm-key-id", "y"))
	tb.until("the confirm button", "!document.querySelector('dialog button[value=ok]').disabled")
	tb.click("dialog button[value=ok]")
	tb.untilText("#key-state", "PendingDeletion")
	if m := keyState(); m["key_state"] != "PendingDeletion" || m["deletion_date"] == nil {
		t.Errorf("after scheduling deletion the server says %v (%v)", m["key_state"], m["deletion_date"])
	}
	tb.click("#cancel-deletion")
	tb.untilText("#key-state", "Enabled")
	if s := keyState()["key_state"]; s != "Enabled" {
		t.Errorf("after cancelling the deletion the server says %v", s)
	}

	// Aliases page.
	tb.open(base, "#/aliases", "Aliases")
	tb.untilText("#alias-table", "alias/console")
	tb.fill("#alias-name", "alias/orders")
	tb.fill("#alias-target", "app-orders")
	tb.click("form:has(#alias-name) button[type=submit]")
	tb.untilText("#alias-table", "alias/orders")
	tb.screenshot(shots, "console-aliases")

	// Encrypt under the alias with a context, decrypt it back.
	const text = "hello from the console ✓"
	tb.open(base, "#/crypto", "Encrypt / decrypt")
	tb.fill("#enc-key", "alias/console")
	tb.fill("#enc-plaintext", text)
	tb.fill("#enc-context", "app=console\nrun=e2e")
	tb.click("form:has(#enc-plaintext) button[type=submit]")
	tb.until("a ciphertext", "document.querySelector('#enc-result') && document.querySelector('#enc-result').value.length > 20")
	blob := evalIn[string](tb, "document.querySelector('#enc-result').value")
	tb.fill("#dec-ciphertext", blob)
	tb.fill("#dec-context", "run=e2e\napp=console")
	tb.click("form:has(#dec-ciphertext) button[type=submit]")
	tb.until("the plaintext", "document.querySelector('#dec-result') && document.querySelector('#dec-result').value === "+jsString(text))
	tb.screenshot(shots, "console-crypto")
	// The blob is a real one: the server decrypts it for another client.
	st, m, raw := c.do("POST", "/kms/decrypt", map[string]any{"ciphertext_blob": blob, "encryption_context": map[string]string{"app": "console", "run": "e2e"}})
	if st != 200 || str(m, "key_id") != "console-key" {
		t.Errorf("decrypting the console's blob: %d %s", st, short(raw))
	} else if pt, _ := base64.StdEncoding.DecodeString(str(m, "plaintext")); string(pt) != text {
		t.Errorf("decrypting the console's blob: %q", pt)
	}
	// A wrong context is refused in words.
	tb.fill("#dec-context", "app=other")
	tb.click("form:has(#dec-ciphertext) button[type=submit]")
	tb.untilText("form:has(#dec-ciphertext) [role=alert]", "InvalidCiphertext")

	// Service: reconfigure the cache, clear it.
	tb.open(base, "#/service", "Service")
	tb.untilText("#service-status", "Running")
	tb.until("the configuration form", "document.querySelector('#cache_ttl_seconds') && document.querySelector('#cache_ttl_seconds').value === '300'")
	tb.fill("#cache_ttl_seconds", "120")
	tb.fill("#max_cached_keys", "500")
	tb.click("#save-config")
	tb.untilText("#service-messages", "reconfigured")
	st, m, raw = c.do("GET", "/kms/config", nil)
	if st != 200 || m["cache_ttl_seconds"] != float64(120) || m["cache_max_keys"] != float64(500) || m["backend"] != "local" {
		t.Errorf("config after the console's reconfigure: %d %s", st, short(raw))
	}
	// Validation in the browser: an out-of-range value is never sent
	// (the audit log, written in order, shows the later clear-cache and
	// still only the one reconfigure).
	tb.fill("#cache_ttl_seconds", "0")
	tb.click("#save-config")
	if msg := evalIn[string](tb, "document.querySelector('#cache_ttl_seconds').validationMessage"); !strings.Contains(msg, "1 to 86400") {
		t.Errorf("cache TTL 0: validation message %q", msg)
	}
	tb.fill("#cache_ttl_seconds", "120")
	tb.click("#clear-cache")
	tb.untilText("#service-messages", "cache is cleared")
	audit := waitFor(t, "the clear-cache audit line", func() (string, bool) {
		s := readFile(t, auditPath)
		return s, strings.Contains(s, `"/rustfs/admin/v3/kms/clear-cache"`)
	})
	if n := strings.Count(audit, `"/rustfs/admin/v3/kms/reconfigure"`); n != 1 {
		t.Errorf("%d reconfigure calls reached the server, want 1 (an invalid form was sent?)", n)
	}
	tb.screenshot(shots, "console-service")

	// Page scripts cannot inject code or markup (CSP, Trusted Types).
	if got := evalIn[string](tb, `(() => { const r = [];
		try { document.body.insertAdjacentHTML('beforeend', '<img src=x onerror="window.__pwned=1">'); r.push('html'); } catch (e) { r.push('no-html'); }
		try { const s = document.createElement('script'); s.textContent = 'window.__pwned = 1'; document.body.append(s); r.push('script'); } catch (e) { r.push('no-script'); }
		return r.join(',') })()`); got != "no-html,no-script" {
		t.Errorf("markup and script injection: %s", got)
	}
	time.Sleep(100 * time.Millisecond)
	if evalIn[bool](tb, "window.__pwned === 1") {
		t.Error("injected code ran")
	}

	// Labels: every control has an accessible name.
	for _, page := range []string{"#/service", "#/keys/console-key", "#/crypto", "#/aliases", "#/keys"} {
		tb.open(base, page, "")
		tb.until("the page", "document.querySelector('main h1') && !document.querySelector('main').textContent.includes('Loading…')")
		if bad := evalIn[string](tb, `[...document.querySelectorAll('input, select, textarea, button')].filter((el) =>
			!(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby') && !el.textContent.trim()
		).map((el) => el.outerHTML.slice(0, 80)).join('\n')`); bad != "" {
			t.Errorf("%s: controls without a name:\n%s", page, bad)
		}
	}

	noSecretAnywhere(tb, srv.SecretKey)
	// Sign out: back to the sign-in page, nothing left.
	tb.click("#sign-out")
	tb.untilText("main", "You signed out.")
	if evalIn[bool](tb, "import('/console/js/session.js').then((m) => m.active() !== null)") {
		t.Error("a session is still active after signing out")
	}
	noSecretAnywhere(tb, srv.SecretKey)
	if ex := tb.exceptions(); len(ex) > 0 {
		t.Errorf("uncaught exceptions in the page: %q", ex)
	}
}

// consoleRestricted: a restricted user is refused in words, and neither the
// console nor script in its page gets around it.
func consoleRestricted(t *testing.T, fx *consoleFixture) {
	b, srv, base, shots, signIn := fx.b, fx.srv, fx.base, fx.shots, fx.signIn
	viewerSecret := fx.viewerSecret
	c := srv.client(t)
	tb := b.tab(t)
	signIn(tb, base, "viewer", viewerSecret)
	// The overview says what the user may not see, and shows the rest.
	tb.untilText("main", "may not do kms:ServiceControl")
	tb.untilText("[data-state=Enabled]", "")
	tb.until("the metrics refusal", "document.querySelector('.charts') && document.querySelector('.charts').textContent.includes('403 AccessDenied')")

	// Creating a key: refused, in words, with the request id.
	tb.open(base, "#/keys/new", "Create key")
	tb.fill("input[name=key_id]", "viewer-key")
	tb.click("main form button[type=submit]")
	msg := tb.untilText("main [role=alert]", "Access denied")
	for _, want := range []string{`User "viewer" may not do kms:CreateKey`, "HTTP 403 AccessDenied", "request id"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal %q lacks %q", msg, want)
		}
	}
	if !requestIDRE.MatchString(evalIn[string](tb, "document.querySelector('main [role=alert] .request-id').textContent")) {
		t.Error("the refusal shows no request id")
	}
	tb.screenshot(shots, "console-denied")

	// Disabling a key it may describe: refused; the key is unchanged.
	tb.open(base, "#/keys/app-orders", "Key app-orders")
	tb.click("#disable-key")
	tb.untilText("#key-messages", "may not do kms:DisableKey")
	tb.untilText("#key-state", "Enabled")

	// Encrypt: allowed on app-* keys, refused on others.
	tb.open(base, "#/crypto", "Encrypt / decrypt")
	tb.fill("#enc-key", "app-orders")
	tb.fill("#enc-plaintext", "ok")
	tb.click("form:has(#enc-plaintext) button[type=submit]")
	tb.until("a ciphertext", "document.querySelector('#enc-result')")
	tb.fill("#enc-key", "console-key")
	tb.click("form:has(#enc-plaintext) button[type=submit]")
	tb.untilText("form:has(#enc-plaintext) [role=alert]", "may not do kms:Encrypt")

	// The service page: nothing to change.
	tb.open(base, "#/service", "Service")
	tb.untilText("main", "may not do kms:Configure")
	if evalIn[bool](tb, "!!document.querySelector('#save-config')") {
		t.Error("the configuration form is offered to a user without kms:Configure")
	}

	// No way around it: the only credential in the page is the
	// viewer's, and script in the page gets the same answers.
	got := evalIn[string](tb, `(async () => {
		const m = await import('/console/js/session.js');
		const r = [];
		try { await m.active().api.createKey({key_id: 'sneaky'}); r.push('created'); } catch (e) { r.push(String(e.status)); }
		try { await m.active().api.reconfigure({cache_ttl_seconds: 5}); r.push('reconfigured'); } catch (e) { r.push(String(e.status)); }
		const u = await fetch('/rustfs/admin/v3/kms/keys', {method: 'POST', body: '{"key_id":"sneaky"}'});
		r.push(String(u.status));
		return r.join(',');
	})()`)
	if got != "403,403,401" {
		t.Errorf("calls from the viewer's page: %s, want 403,403,401", got)
	}
	if st, _, _ := c.do("GET", "/kms/keys/sneaky", nil); st != 404 {
		t.Errorf("the viewer made key sneaky: %d", st)
	}
	if st, _, _ := c.do("GET", "/kms/keys/viewer-key", nil); st != 404 {
		t.Errorf("the viewer made key viewer-key: %d", st)
	}
	if st, m, _ := c.do("GET", "/kms/keys/app-orders", nil); st != 200 || m["key_metadata"].(map[string]any)["key_state"] != "Enabled" {
		t.Errorf("app-orders after the viewer: %d %v", st, m)
	}
	if st, m, _ := c.do("GET", "/kms/config", nil); st != 200 || m["cache_ttl_seconds"] == float64(5) {
		t.Errorf("the viewer reconfigured the service: %v", m)
	}
	noSecretAnywhere(tb, viewerSecret)
}

// consoleServiceForms configures a new server from nothing: vault-transit
// (checked in the browser, the token write-only), then local with a master
// key, then start.
func consoleServiceForms(t *testing.T, fx *consoleFixture) {
	b, signIn := fx.b, fx.signIn
	fresh := startServer(t, serverOpts{})
	c := fresh.client(t)
	tb := b.tab(t)
	base := fresh.URL
	signIn(tb, base, fresh.AccessKey, fresh.SecretKey)
	tb.open(base, "#/service", "Service")
	tb.untilText("#service-status", "NotConfigured")
	tb.until("the configuration form", "document.querySelector('#config-form')")
	if !evalIn[bool](tb, "document.querySelector('#mode-configure').checked && document.querySelector('#mode-reconfigure').disabled") {
		t.Error("a new server's form does not offer configure only")
	}
	tb.choose("#backend_type", "vault-transit")
	tb.fill("#address", "ftp://vault.example")
	tb.click("#save-config")
	if msg := evalIn[string](tb, "document.querySelector('#address').validationMessage"); !strings.Contains(msg, "http:// or https://") {
		t.Errorf("address ftp://: validation message %q", msg)
	}
	token := "hvs.console-token-" + randomHex(6)
	tb.fill("#address", "http://127.0.0.1:1")
	tb.fill("#token-value", token)
	if got := evalIn[string](tb, "document.querySelector('#token-value').type"); got != "password" {
		t.Errorf("the token field is of type %q", got)
	}
	tb.fill("#mount_path", "transit-console")
	tb.click("#save-config")
	tb.untilText("#service-messages", "configured")
	st, m, raw := c.do("GET", "/kms/status", nil)
	sum, _ := m["config_summary"].(map[string]any)
	bs, _ := sum["backend_summary"].(map[string]any)
	if st != 200 || m["status"] != "Configured" || m["backend_type"] != "vault-transit" || bs["address"] != "http://127.0.0.1:1" ||
		bs["auth_method_type"] != "token" || bs["mount_path"] != "transit-console" {
		t.Errorf("status after configuring vault-transit: %d %s", st, short(raw))
	}
	noSecretAnywhere(tb, token)

	tb.until("the form in reconfigure mode", "document.querySelector('#mode-reconfigure').checked")
	tb.click("#mode-configure")
	tb.choose("#backend_type", "local")
	tb.choose("#master_key-source", "inline")
	tb.fill("#master_key-value", "correct horse battery staple")
	tb.click("#save-config")
	tb.untilText("#service-messages", "configured")
	tb.click("#start-service")
	tb.untilText("#service-status", "Running")
	st, m, raw = c.do("GET", "/kms/status", nil)
	sum, _ = m["config_summary"].(map[string]any)
	bs, _ = sum["backend_summary"].(map[string]any)
	if st != 200 || m["status"] != "Running" || m["backend_type"] != "local" || bs["has_master_key"] != true {
		t.Errorf("status after configuring local and starting: %d %s", st, short(raw))
	}
	noSecretAnywhere(tb, "correct horse battery staple")
}

// signIn signs in at base with the keyboard: type, Tab to the secret, Enter.
func (fx *consoleFixture) signIn(tb *tab, base, ak, sk string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(base + "/console/"))
	tb.untilText("main h1", "Sign in")
	// With the keyboard: type, Tab to the secret, Enter submits.
	tb.do(chromedp.WaitVisible("input[name=access_key]"), chromedp.SendKeys("input[name=access_key]", ak))
	tb.do(chromedp.KeyEvent(kb.Tab))
	if got := evalIn[string](tb, "document.activeElement.name"); got != "secret_key" {
		tb.t.Fatalf("Tab from the access key went to %q, want the secret key", got)
	}
	tb.do(chromedp.KeyEvent(sk + kb.Enter))
	tb.untilText("#who", ak)
}

// noSecretAnywhere: the secret is in no storage, cookie, URL or DOM.
func noSecretAnywhere(tb *tab, secret string) {
	tb.t.Helper()
	got := evalIn[string](tb, `(async () => {
		const out = [];
		if (localStorage.length) out.push('localStorage');
		if (sessionStorage.length) out.push('sessionStorage');
		if (document.cookie) out.push('cookie');
		if ((await indexedDB.databases()).length) out.push('indexedDB');
		if (self.caches && (await caches.keys()).length) out.push('CacheStorage');
		return out.join(',');
	})()`)
	if got != "" {
		tb.t.Errorf("the console stored something in: %s", got)
	}
	where := evalIn[string](tb, fmt.Sprintf(`(() => {
		const s = %s;
		if (location.href.includes(s)) return 'URL';
		if (document.documentElement.outerHTML.includes(s)) return 'DOM';
		for (const el of document.querySelectorAll('input, textarea')) if (el.value.includes(s)) return 'a field';
		return '';
	})()`, jsString(secret)))
	if where != "" {
		tb.t.Errorf("the secret is in the %s", where)
	}
}
