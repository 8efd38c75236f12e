// OneSync's only script. The pages work without it; it adds the consent
// popup, closes that popup when Microsoft sends the admin back, and moves
// focus to a form's error summary.
(function () {
  'use strict';

  // The consent button: open Microsoft's page in a popup. The window is
  // opened before the request so that the browser counts it as a reaction
  // to the click; if the browser blocks it, the form posts as usual and the
  // server answers with a redirect to the same page.
  var form = document.querySelector('form[data-consent]');
  if (form) {
    form.addEventListener('submit', function (ev) {
      var popup = window.open('', 'onesync-consent', 'width=560,height=720');
      if (!popup) {
        return;
      }
      ev.preventDefault();
      var status = document.getElementById('consent-status');
      var token = form.querySelector('input[name="csrf"]').value;
      fetch(form.action, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Accept': 'application/json', 'X-CSRF-Token': token }
      }).then(function (res) {
        return res.json().then(function (body) {
          if (!res.ok || !body.url) {
            throw new Error(body.error || 'no consent address');
          }
          return body.url;
        });
      }).then(function (url) {
        popup.location.href = url;
        if (status) {
          status.textContent = 'A Microsoft window is open. Sign in there and accept; ' +
            'this page updates when you are done.';
        }
        watch(popup);
      }).catch(function () {
        popup.close();
        form.submit();
      });
    });
  }

  // When the admin closes the popup without finishing, show the page anew.
  function watch(popup) {
    var timer = window.setInterval(function () {
      if (!popup.closed) {
        return;
      }
      window.clearInterval(timer);
      if (!window.onesyncConsentDone) {
        window.location.reload();
      }
    }, 1000);
  }

  // The consent callback page: hand the outcome to the page that opened
  // the popup and close it, or, after a full redirect, go on here.
  var back = document.querySelector('[data-consent-next]');
  if (back) {
    var next = back.getAttribute('data-consent-next');
    var opener = window.opener;
    if (opener && !opener.closed) {
      try {
        opener.onesyncConsentDone = true;
        opener.location.href = next;
        window.close();
        return;
      } catch (e) {
        // The opener is on another site: carry on in this window.
      }
    }
    window.location.replace(next);
    return;
  }

  // After a failed submit, move focus to the error summary so that screen
  // reader and keyboard users hear what to fix.
  var summary = document.querySelector('[data-focus]');
  if (summary) {
    summary.focus();
  }
})();
