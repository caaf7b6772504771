/*
 * Coffer console: small enhancements; every page works without this file.
 * - Copy buttons: each <button class="copy" data-copy="…"> copies its value to the clipboard.
 *   They are hidden until this script runs (the html element gets class "js").
 * - A form re-rendered with messages puts the focus on its first field with an error.
 * Loaded from /static under the console's CSP (script-src 'self'): no inline script, no eval.
 */
(function () {
  'use strict';
  document.documentElement.classList.add('js');

  function copied(button, ok) {
    var label = button.textContent;
    button.textContent = ok ? 'Copied' : 'Press Ctrl+C';
    button.classList.toggle('copied', ok);
    // Stays after the label returns: how the last click was answered.
    button.setAttribute('data-copied', ok ? 'clipboard' : 'manual');
    setTimeout(function () {
      button.textContent = label;
      button.classList.remove('copied');
    }, 1600);
  }

  function fallback(value) {
    var area = document.createElement('textarea');
    area.value = value;
    area.setAttribute('readonly', '');
    area.className = 'visually-hidden';
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  document.addEventListener('click', function (event) {
    var button = event.target.closest ? event.target.closest('button.copy[data-copy]') : null;
    if (!button) { return; }
    event.preventDefault();
    var value = button.getAttribute('data-copy');
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(value).then(
        function () { copied(button, true); },
        function () { copied(button, fallback(value)); }
      );
    } else {
      copied(button, fallback(value));
    }
  });

  function focusFirstError() {
    var field = document.querySelector('main [aria-invalid="true"]');
    if (field && typeof field.focus === 'function') { field.focus(); }
  }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', focusFirstError);
  } else {
    focusFirstError();
  }
})();
