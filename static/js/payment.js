/*
 * Coffer payment.js: card tokenization for a merchant's checkout page.
 * Plain ES2017, no dependencies, no eval. Served by Coffer at /static/js/payment.js.
 *
 * The card number and CVV go from the shopper's browser straight to Coffer, which answers a
 * single-use token (`ix::…`, valid for 30 minutes). The merchant's server only ever sees the
 * token and sends it as `transactionToken` in a debit, preauthorize or register call made with
 * the same connector's API key.
 *
 * 1. Programmatic:
 *
 *   <script src="https://coffer.example.com/static/js/payment.js"></script>
 *   CofferPayment.tokenize({
 *     baseUrl: 'https://coffer.example.com', // where Coffer runs
 *     publicKey: 'demo-shop-public',         // the connector's public integration key
 *     cardHolder: 'Ann Example',             // optional, at most 100 characters
 *     number: '4111 1111 1111 1111',         // spaces and dashes are ignored
 *     cvv: '123',                            // 3 digits, 4 for amex
 *     month: '12',                           // 1-12
 *     year: '2030'                           // 4 digits, or 2 meaning 20yy
 *   }).then(function (card) {
 *     // card.token, card.brand, card.firstSixDigits, card.lastFourDigits
 *   }).catch(function (err) {
 *     // err.message (names the fields at fault, never their values),
 *     // err.code (IXOPAY errorCode, e.g. 1002), err.status (HTTP status, 0 if unreachable)
 *   });
 *
 * 2. Form helper:
 *
 *   <form id="checkout" action="/pay" method="post">
 *     <input data-coffer="cardHolder" autocomplete="cc-name">
 *     <input data-coffer="number" autocomplete="cc-number" inputmode="numeric">
 *     <input data-coffer="month" autocomplete="cc-exp-month" inputmode="numeric">
 *     <input data-coffer="year" autocomplete="cc-exp-year" inputmode="numeric">
 *     <input data-coffer="cvv" autocomplete="cc-csc" inputmode="numeric">
 *     <input name="amount" value="9.99">            (the merchant's own fields are kept)
 *     <button type="submit">Pay</button>
 *   </form>
 *   <script src="https://coffer.example.com/static/js/payment.js"></script>
 *   <script src="/checkout.js"></script>  (a file of your own, so your CSP needs no inline script)
 *
 *   // checkout.js
 *   CofferPayment.attach(document.getElementById('checkout'), {
 *     baseUrl: 'https://coffer.example.com',
 *     publicKey: 'demo-shop-public',
 *     tokenField: 'transaction_token',          // optional, the default
 *     onError: function (err) { ... },          // optional; else a `coffer:error` event
 *     onToken: function (card) { ... }          // optional; return false to not submit
 *   });
 *
 *   attach() removes the `name` attribute of every `data-coffer` field at once (better: give
 *   them none), so the browser never posts the card to the merchant's server. On submit it
 *   tokenizes, empties the number and CVV inputs, puts the token into the hidden input named
 *   by `tokenField` (created when missing) and submits the form. On failure nothing is
 *   submitted: `onError(err)` is called, or a `coffer:error` event (detail: err) is
 *   dispatched on the form.
 *
 * A checkout page with a Content-Security-Policy needs Coffer's origin in `script-src` and
 * `connect-src`. The tokenize endpoint allows any origin (CORS `*`) and uses no cookies.
 */
(function (root) {
  'use strict';

  var FIELDS = ['cardHolder', 'number', 'cvv', 'month', 'year'];

  function cofferError(message, code, status) {
    var err = new Error(message);
    err.name = 'CofferError';
    err.code = code;
    err.status = status;
    return err;
  }

  function endpoint(baseUrl, publicKey) {
    var base = String(baseUrl || '').replace(/\/+$/, '');
    return base + '/api/v3/paymentjs/' + encodeURIComponent(publicKey) + '/tokenize';
  }

  function text(value) {
    return value === undefined || value === null ? '' : String(value).trim();
  }

  /**
   * Sends the card to Coffer. Resolves to {token, brand, firstSixDigits, lastFourDigits};
   * rejects with an Error carrying `code` (IXOPAY errorCode) and `status` (HTTP status).
   */
  async function tokenize(options) {
    var o = options || {};
    if (!o.publicKey) {
      throw cofferError('publicKey is required', 1002, 0);
    }
    var body = {
      number: text(o.number).replace(/[\s-]/g, ''),
      cvv: text(o.cvv),
      month: text(o.month),
      year: text(o.year)
    };
    var holder = text(o.cardHolder);
    if (holder) {
      body.cardHolder = holder;
    }
    var response;
    try {
      response = await fetch(endpoint(o.baseUrl, o.publicKey), {
        method: 'POST',
        mode: 'cors',
        credentials: 'omit',
        cache: 'no-store',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body)
      });
    } catch (e) {
      throw cofferError('Coffer could not be reached.', 1000, 0);
    }
    var data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok || !data || data.success !== true || typeof data.token !== 'string') {
      throw cofferError(
        (data && data.errorMessage) || 'Tokenization failed (HTTP ' + response.status + ').',
        (data && data.errorCode) || 1000,
        response.status
      );
    }
    return {
      token: data.token,
      brand: data.brand,
      firstSixDigits: data.firstSixDigits,
      lastFourDigits: data.lastFourDigits
    };
  }

  function findFields(form) {
    var found = {};
    FIELDS.forEach(function (name) {
      found[name] = form.querySelector('[data-coffer="' + name + '"]');
    });
    return found;
  }

  function stripNames(fields) {
    FIELDS.forEach(function (name) {
      if (fields[name]) {
        fields[name].removeAttribute('name');
      }
    });
  }

  function submitForm(form) {
    // HTMLFormElement.prototype.submit works even when a field named "submit" shadows it,
    // and does not fire another submit event.
    var submit = typeof HTMLFormElement !== 'undefined' && form instanceof HTMLFormElement
      ? HTMLFormElement.prototype.submit
      : form.submit;
    submit.call(form);
  }

  function hiddenInput(form, name) {
    var existing = form.elements && form.elements.namedItem(name);
    if (existing && existing.tagName === 'INPUT') {
      return existing;
    }
    var input = form.ownerDocument.createElement('input');
    input.type = 'hidden';
    input.name = name;
    form.appendChild(input);
    return input;
  }

  /**
   * Tokenizes the card fields of `form` (marked with data-coffer="cardHolder|number|cvv|month|year")
   * on submit, then submits the form with only the token. Returns {detach}.
   */
  function attach(form, options) {
    if (!form || typeof form.querySelector !== 'function' || typeof form.addEventListener !== 'function') {
      throw new TypeError('CofferPayment.attach needs a form element');
    }
    var o = Object.assign({ tokenField: 'transaction_token' }, options || {});
    var fields = findFields(form);
    var missing = ['number', 'cvv', 'month', 'year'].filter(function (name) {
      return !fields[name];
    });
    if (missing.length) {
      throw new Error('CofferPayment.attach: no data-coffer field for ' + missing.join(', '));
    }
    stripNames(fields);
    var busy = false;

    function fail(err) {
      busy = false;
      if (typeof o.onError === 'function') {
        o.onError(err);
      } else {
        var Custom = form.ownerDocument && form.ownerDocument.defaultView
          ? form.ownerDocument.defaultView.CustomEvent
          : root.CustomEvent;
        if (typeof Custom === 'function') {
          form.dispatchEvent(new Custom('coffer:error', { detail: err, bubbles: true }));
        }
      }
    }

    function onSubmit(event) {
      event.preventDefault();
      if (busy) {
        return;
      }
      busy = true;
      stripNames(fields); // in case something added them back
      tokenize({
        baseUrl: o.baseUrl,
        publicKey: o.publicKey,
        cardHolder: fields.cardHolder ? fields.cardHolder.value : '',
        number: fields.number.value,
        cvv: fields.cvv.value,
        month: fields.month.value,
        year: fields.year.value
      }).then(function (card) {
        hiddenInput(form, o.tokenField).value = card.token;
        fields.number.value = '';
        fields.cvv.value = '';
        if (typeof o.onToken === 'function' && o.onToken(card) === false) {
          busy = false;
          return;
        }
        submitForm(form);
      }).catch(fail);
    }

    form.addEventListener('submit', onSubmit);
    return {
      detach: function () {
        form.removeEventListener('submit', onSubmit);
      }
    };
  }

  var api = { tokenize: tokenize, attach: attach, version: '1' };
  if (typeof module === 'object' && module && module.exports) {
    module.exports = api;
  }
  if (root) {
    root.CofferPayment = api;
  }
})(typeof self !== 'undefined' ? self : this);
