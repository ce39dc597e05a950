// Passkeys on Latch's pages: sign in (a button, and autofill in the
// username field where the browser offers it), use one as the second step
// of a sign-in, and add one on the security page. Each ceremony is two
// JSON calls to Latch around one browser call: `…/options` answers
// {ceremony, options}, the browser asks the authenticator, `…/finish`
// takes the answer. Served by Latch itself (no CDN); pages work without
// it except for passkeys.
"use strict";

(function () {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return; // No WebAuthn here: the passkey parts stay hidden.
  }

  // WebAuthn takes ArrayBuffers; Latch's JSON carries base64url (no padding).
  function fromBase64url(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map(function (item) {
      return Object.assign({}, item, { id: fromBase64url(item.id) });
    });
  }

  function creationOptions(publicKey) {
    return Object.assign({}, publicKey, {
      challenge: fromBase64url(publicKey.challenge),
      user: Object.assign({}, publicKey.user, { id: fromBase64url(publicKey.user.id) }),
      excludeCredentials: withIds(publicKey.excludeCredentials),
    });
  }

  function requestOptions(publicKey) {
    return Object.assign({}, publicKey, {
      challenge: fromBase64url(publicKey.challenge),
      allowCredentials: withIds(publicKey.allowCredentials),
    });
  }

  function registrationJson(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: {
        attestationObject: toBase64url(response.attestationObject),
        clientDataJSON: toBase64url(response.clientDataJSON),
        transports: response.getTransports ? response.getTransports() : undefined,
      },
      extensions: credential.getClientExtensionResults(),
    };
  }

  function assertionJson(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: {
        authenticatorData: toBase64url(response.authenticatorData),
        clientDataJSON: toBase64url(response.clientDataJSON),
        signature: toBase64url(response.signature),
        userHandle: response.userHandle ? toBase64url(response.userHandle) : null,
      },
      extensions: credential.getClientExtensionResults(),
    };
  }

  // POSTs `body` as JSON; resolves to the JSON answer, or rejects with an
  // Error whose message is Latch's `error_description`.
  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (!response.ok) {
          throw new Error(answer.error_description || "Latch could not complete the request.");
        }
        return answer;
      });
    });
  }

  function show(element, message) {
    if (!element) return;
    element.textContent = message;
    element.hidden = !message;
  }

  // What to tell the person when the browser call fails.
  function browserMessage(error) {
    if (error && error.name === "NotAllowedError") {
      return "The passkey request was cancelled or timed out.";
    }
    if (error && error.name === "InvalidStateError") {
      return "This authenticator already holds a passkey for your account.";
    }
    return (error && error.message) || "The passkey could not be used.";
  }

  // A DOMException comes from the browser call; an Error from Latch's answer.
  function describe(error) {
    return error instanceof DOMException ? browserMessage(error) : (error && error.message) || "";
  }

  function field(form, name) {
    var input = form && form.querySelector('input[name="' + name + '"]');
    return input ? input.value : "";
  }

  // ---- Sign-in page: a button, and autofill (conditional mediation).

  function setUpSignIn(box) {
    var form = document.querySelector('form[action="/login"]');
    var button = document.getElementById("passkey-sign-in");
    var errors = document.getElementById("passkey-error");
    var csrf = field(form, "csrf_token");
    var next = field(form, "next");
    var pending = null; // The AbortController of the autofill request, if any.

    function signIn(mediation) {
      var controller = new AbortController();
      // Cancellable from the start: the button may be pressed while the
      // autofill request still waits for its options.
      if (mediation === "conditional") pending = controller;
      return post("/login/passkey/options", { csrf_token: csrf }).then(function (begun) {
        if (controller.signal.aborted) throw new DOMException("The request was cancelled.", "AbortError");
        var request = { publicKey: requestOptions(begun.options.publicKey), signal: controller.signal };
        if (mediation) request.mediation = mediation;
        return navigator.credentials.get(request).then(function (credential) {
          return post("/login/passkey/finish", {
            csrf_token: csrf,
            ceremony: begun.ceremony,
            next: next,
            credential: assertionJson(credential),
          });
        });
      }).then(function (done) {
        window.location.assign(done.redirect);
      });
    }

    function autofill() {
      signIn("conditional").catch(function (error) {
        // The browser's side of a background request (aborted for the
        // button's, or refused with no passkey to offer) is nothing the
        // person asked for; only Latch's refusal of a passkey they picked is.
        if (error instanceof DOMException) return;
        show(errors, describe(error));
      });
    }

    button.addEventListener("click", function () {
      // A browser serves one WebAuthn request at a time: end the pending
      // autofill request before the button's modal one starts.
      if (pending) pending.abort();
      pending = null;
      show(errors, "");
      button.disabled = true;
      signIn(null).catch(function (error) {
        show(errors, describe(error));
        button.disabled = false;
        startAutofill();
      });
    });

    function startAutofill() {
      var available = PublicKeyCredential.isConditionalMediationAvailable;
      if (!available) return;
      available.call(PublicKeyCredential).then(function (yes) {
        if (yes) autofill();
      });
    }

    box.hidden = false;
    startAutofill();
  }

  // ---- Second step of a sign-in: a passkey instead of a code.

  function setUpSecondFactor(button) {
    var form = document.querySelector('form[action="/login"]');
    var errors = document.getElementById("passkey-error");
    var csrf = field(form, "csrf_token");
    var next = field(form, "next");
    document.getElementById("passkey-factor-box").hidden = false;
    button.addEventListener("click", function () {
      show(errors, "");
      button.disabled = true;
      post("/login/passkey/second-factor/options", { csrf_token: csrf }).then(function (begun) {
        return navigator.credentials.get({ publicKey: requestOptions(begun.options.publicKey) })
          .then(function (credential) {
            return post("/login/passkey/second-factor/finish", {
              csrf_token: csrf,
              ceremony: begun.ceremony,
              next: next,
              credential: assertionJson(credential),
            });
          });
      }).then(function (done) {
        window.location.assign(done.redirect);
      }).catch(function (error) {
        show(errors, describe(error));
        button.disabled = false;
      });
    });
  }

  // ---- Security page: add a passkey.

  function setUpRegistration(form) {
    var errors = document.getElementById("passkey-add-error");
    var button = form.querySelector("button");
    form.hidden = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      show(errors, "");
      button.disabled = true;
      var csrf = field(form, "csrf_token");
      post("/account/security/passkeys/options", { csrf_token: csrf, name: field(form, "name") })
        .then(function (begun) {
          return navigator.credentials.create({ publicKey: creationOptions(begun.options.publicKey) })
            .then(function (credential) {
              return post("/account/security/passkeys/finish", {
                csrf_token: csrf,
                ceremony: begun.ceremony,
                credential: registrationJson(credential),
              });
            });
        }).then(function () {
          window.location.reload();
        }).catch(function (error) {
          show(errors, describe(error));
          button.disabled = false;
        });
    });
  }

  function start() {
    var signInBox = document.getElementById("passkey-sign-in-box");
    if (signInBox) setUpSignIn(signInBox);
    var secondFactor = document.getElementById("passkey-second-factor");
    if (secondFactor) setUpSecondFactor(secondFactor);
    var add = document.getElementById("passkey-add");
    if (add) setUpRegistration(add);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
