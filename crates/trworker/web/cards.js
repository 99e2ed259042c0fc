// Cards shown by key in the page's slots. A card is built anew only when what it shows has changed, so that
// an unchanged card, and the focus and the typing in it, stay put however many states the server sends.

export class Cards {
  /** Key → `{el, signature}`: each card shown, with the signature of the data it was built from. */
  #shown = new Map();

  /**
   * Shows `wanted` (key → `{slot, data, build}`, in order) in their slots (elements). A card whose data has
   * a new `signature(data)` is built anew (`build(data)`, then `fill(el, data, old)`) in its old one's place,
   * with the focus kept on the same action; every card is then `update(el, data)`d; cards no longer wanted
   * are removed.
   */
  show(wanted, { signature, fill, update }) {
    for (const [key, card] of this.#shown) {
      if (!wanted.has(key)) {
        card.el.remove();
        this.#shown.delete(key);
      }
    }
    const order = new Map();
    for (const [key, { slot, data, build }] of wanted) {
      const sig = signature(data);
      let card = this.#shown.get(key);
      if (!card || card.signature !== sig) {
        const el = build(data);
        fill(el, data, card?.el);
        if (card) replaceKeepingFocus(card.el, el);
        card = { el, signature: sig };
        this.#shown.set(key, card);
      }
      update(card.el, data);
      if (!order.has(slot)) order.set(slot, []);
      order.get(slot).push(card.el);
    }
    for (const [container, elements] of order) {
      elements.forEach((el, i) => {
        if (container.children[i] !== el) container.insertBefore(el, container.children[i] ?? null);
      });
    }
  }
}

function replaceKeepingFocus(oldEl, newEl) {
  const active = document.activeElement;
  const action = oldEl.contains(active) ? active.dataset.action : null;
  oldEl.replaceWith(newEl);
  if (action) newEl.querySelector(`[data-action="${CSS.escape(action)}"]`)?.focus();
}
