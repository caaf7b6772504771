// Drives static/js/payment.js against a running Coffer with Node's fetch (Node >= 18).
// Usage: node tests/js/payment_smoke.js <baseUrl> <publicKey>
// Run by tests/it/tokenize.rs when `node` is on PATH. Prints "ok" and exits 0 when every check passes.
'use strict';

const assert = require('assert');
const path = require('path');
const CofferPayment = require(path.join(__dirname, '..', '..', 'static', 'js', 'payment.js'));

const [baseUrl, publicKey] = process.argv.slice(2);

// A minimal stand-in for a form element, enough for attach().
function fakeForm(values) {
  const inputs = {};
  const appended = [];
  const listeners = {};
  for (const [key, value] of Object.entries(values)) {
    const attrs = { name: key };
    inputs[key] = {
      tagName: 'INPUT',
      value,
      removeAttribute(a) { delete attrs[a]; },
      hasName() { return 'name' in attrs; }
    };
  }
  const form = {
    submitted: 0,
    events: [],
    ownerDocument: {
      createElement() { return { tagName: 'INPUT' }; }
    },
    elements: { namedItem(n) { return appended.find((i) => i.name === n) || null; } },
    querySelector(sel) {
      const m = /^\[data-coffer="(\w+)"\]$/.exec(sel);
      return m ? inputs[m[1]] || null : null;
    },
    addEventListener(type, fn) { listeners[type] = fn; },
    removeEventListener(type) { delete listeners[type]; },
    dispatchEvent(e) { this.events.push(e); },
    appendChild(el) { appended.push(el); },
    submit() { this.submitted += 1; this.settle(); },
    settle() {},
    // Fires the event and waits until the form is submitted or settle() is called (onError).
    fire(type) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no outcome within 20 s')), 20000);
        this.settle = () => { clearTimeout(timer); resolve(); };
        listeners[type]({ preventDefault() {} });
      });
    },
    inputs,
    appended
  };
  return form;
}

(async () => {
  const ok = await CofferPayment.tokenize({
    baseUrl: baseUrl + '/', publicKey, cardHolder: 'Node Example',
    number: '4111 1111 1111 1111', cvv: '123', month: 12, year: '2099'
  });
  assert.match(ok.token, /^ix::[A-Za-z0-9]{20}$/);
  assert.deepStrictEqual(
    [ok.brand, ok.firstSixDigits, ok.lastFourDigits],
    ['visa', '411111', '1111']
  );

  await assert.rejects(
    CofferPayment.tokenize({ baseUrl, publicKey, number: '4111111111111112', cvv: '123', month: '12', year: '2099' }),
    (err) => err.code === 1002 && err.status === 422 && /number/.test(err.message) && !err.message.includes('4111111111111112')
  );
  await assert.rejects(
    CofferPayment.tokenize({ baseUrl, publicKey: 'no-such-key', number: '4111111111111111', cvv: '123', month: '12', year: '2099' }),
    (err) => err.status === 404 && err.code === 1000
  );

  const form = fakeForm({ number: '5555555555554444', cvv: '321', month: '01', year: '2099', cardHolder: 'Form Example' });
  let token = null;
  CofferPayment.attach(form, { baseUrl, publicKey, onToken: (card) => { token = card.token; } });
  for (const input of Object.values(form.inputs)) {
    assert.strictEqual(input.hasName(), false, 'card fields lose their name on attach');
  }
  await form.fire('submit');
  assert.strictEqual(form.submitted, 1);
  assert.match(token, /^ix::/);
  assert.strictEqual(form.appended.length, 1);
  assert.strictEqual(form.appended[0].name, 'transaction_token');
  assert.strictEqual(form.appended[0].type, 'hidden');
  assert.strictEqual(form.appended[0].value, token);
  assert.strictEqual(form.inputs.number.value, '');
  assert.strictEqual(form.inputs.cvv.value, '');

  const bad = fakeForm({ number: '5555555555554444', cvv: '32', month: '01', year: '2099' });
  let failure = null;
  CofferPayment.attach(bad, { baseUrl, publicKey, onError: (err) => { failure = err; bad.settle(); } });
  await bad.fire('submit');
  assert.strictEqual(bad.submitted, 0, 'nothing is submitted on failure');
  assert.ok(failure && failure.code === 1002 && /cvv/.test(failure.message), String(failure && failure.message));

  assert.throws(() => CofferPayment.attach(fakeForm({ number: '1' }), { baseUrl, publicKey }), /cvv, month, year/);
  console.log('ok');
})().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
