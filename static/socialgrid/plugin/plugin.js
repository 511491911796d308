// The plugin page (templates/plugin/embed.html): the consent step, and the frame's height
// for embed.js.
//
// Nothing computes before consent: the volunteer panel ([data-plugin-panel]) is hidden and
// inert, and the worker code (volunteer.js, which binds the panel) is only imported after
// "Yes, compute". Then the panel's own Start button is pressed for the visitor.

const consent = document.querySelector("[data-plugin-consent]");
const wrapper = document.querySelector("[data-plugin-panel]");
if (consent && wrapper) askFirst(consent, wrapper);
reportHeight();

function askFirst(consent, wrapper) {
  const start = consent.querySelector("[data-plugin-start]");
  const yes = consent.querySelector('[data-consent="yes"]');
  const no = consent.querySelector('[data-consent="no"]');
  const declined = consent.querySelector("[data-consent-declined]");

  function step(name) {
    for (const element of consent.querySelectorAll("[data-consent-step]")) {
      element.hidden = element.dataset.consentStep !== name;
    }
    start.setAttribute("aria-expanded", String(name === "ask"));
  }

  start.addEventListener("click", () => {
    declined.hidden = true;
    step("ask");
    yes.focus();
  });
  no.addEventListener("click", () => {
    step("offer");
    declined.hidden = false;
    start.focus();
  });
  yes.addEventListener("click", async () => {
    yes.disabled = true;
    no.disabled = true;
    try {
      await import(wrapper.dataset.volunteerScript);
    } catch (error) {
      console.error("socialgrid: could not load the worker", error);
      consent.querySelector("[data-consent-error]").hidden = false;
      return;
    }
    consent.hidden = true;
    wrapper.hidden = false;
    wrapper.inert = false;
    wrapper.querySelector('[data-action="start"]').click();
    wrapper.querySelector("#volunteer-heading")?.focus();
  });
}

// A frame cannot size itself: tell the page around it (embed.js listens; a plain iframe
// snippet ignores this and scrolls). Only a number leaves the frame.
function reportHeight() {
  if (window.parent === window || !("ResizeObserver" in window)) return;
  let last = 0;
  const send = () => {
    // The body, not the document: the document is never shorter than the frame, so it
    // could only ever grow.
    const body = document.body;
    const height = Math.ceil(
      body.getBoundingClientRect().bottom +
        window.scrollY +
        parseFloat(getComputedStyle(body).marginBottom || "0"),
    );
    if (height === last) return;
    last = height;
    window.parent.postMessage({ type: "socialgrid:height", height }, "*");
  };
  new ResizeObserver(send).observe(document.body);
  send();
}
