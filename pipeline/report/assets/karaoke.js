// Karaoke view of a song page: the word under the playhead is highlighted in the lyrics and in the
// word lane; clicking a word, a label or the spectrogram seeks the audio there.
(function () {
  "use strict";
  const audio = document.getElementById("player");
  const strip = document.getElementById("strip");
  const playhead = document.getElementById("playhead");
  const timed = Array.from(document.querySelectorAll("#lyrics .w[data-start]"));
  const starts = timed.map((w) => parseFloat(w.dataset.start));
  const ends = timed.map((w) => parseFloat(w.dataset.end));
  const labels = new Map(Array.from(document.querySelectorAll(".lane .lw")).map((l) => [l.dataset.i, l]));
  const pxPerSecond = parseFloat(strip.dataset.pxPerSecond);
  let current = -1;

  // Index (into the timed words) of the word sung at time t: the latest-starting word whose
  // [start, end) holds t; -1 in a gap between words.
  function wordAt(t) {
    let found = -1;
    for (let k = 0; k < starts.length; k++) {
      if (starts[k] <= t && t < ends[k] && (found < 0 || starts[k] >= starts[found])) found = k;
    }
    return found;
  }

  function setCurrent(k) {
    if (k === current) return;
    if (current >= 0) {
      timed[current].classList.remove("current");
      const old = labels.get(timed[current].dataset.i);
      if (old) old.classList.remove("current");
    }
    current = k;
    if (k < 0) return;
    const word = timed[k];
    word.classList.add("current");
    const label = labels.get(word.dataset.i);
    if (label) label.classList.add("current");
    const box = word.parentElement.parentElement;
    const top = word.offsetTop - box.offsetTop;
    if (top < box.scrollTop || top > box.scrollTop + box.clientHeight - 30) box.scrollTop = top - box.clientHeight / 3;
  }

  function update() {
    const t = audio.currentTime;
    setCurrent(wordAt(t));
    const x = t * pxPerSecond;
    playhead.style.left = x + "px";
    if (x < strip.scrollLeft || x > strip.scrollLeft + strip.clientWidth - 40) strip.scrollLeft = x - strip.clientWidth / 4;
  }

  function seek(t) {
    audio.currentTime = t;
    update();
  }

  function frame() {
    update();
    if (!audio.paused) requestAnimationFrame(frame);
  }

  audio.addEventListener("timeupdate", update);
  audio.addEventListener("seeked", update);
  audio.addEventListener("play", () => requestAnimationFrame(frame));
  for (const word of timed) word.addEventListener("click", () => seek(parseFloat(word.dataset.start)));
  for (const [i, label] of labels) {
    const word = timed.find((w) => w.dataset.i === i);
    if (word) label.addEventListener("click", (e) => { e.stopPropagation(); seek(parseFloat(word.dataset.start)); });
  }
  strip.addEventListener("click", (e) => {
    const inner = strip.firstElementChild.getBoundingClientRect();
    seek(Math.max(0, (e.clientX - inner.left) / pxPerSecond));
  });
  window.karaoke = { wordAt: wordAt, update: update, seek: seek, timed: timed };
})();
