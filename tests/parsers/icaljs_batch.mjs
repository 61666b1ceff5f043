// Batch twin of feedcheck's icaljs_check.mjs: loads ical.js once and checks many files.
//
// Usage: node icaljs_batch.mjs --icaljs DIR --from YYYY-MM-DD --years N LISTFILE
//   LISTFILE holds one path per line. For each path, in order, one JSON line on stdout:
//   {"ok": true, "events": N, "uids": U, "occurrences": M, "notes": [...]} or
//   {"ok": false, "error": "...", ["events": N]}
// The acceptance rules are those of icaljs_check.mjs, file for file: ICAL.parse, decode every
// property value, group VEVENTs by UID, expand each master with its iterator over the window.
// Between files the time zone service is emptied, so every file sees what a fresh process sees.

import { readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const MAX_STEPS_PER_EVENT = 200000;
const TIME_BUDGET_MS = 20000;

function parseArgs(argv) {
  const opts = { years: 2 };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--icaljs') opts.icaljs = argv[++i];
    else if (a === '--from') opts.from = argv[++i];
    else if (a === '--years') opts.years = Number(argv[++i]);
    else rest.push(a);
  }
  if (!opts.icaljs || !opts.from || rest.length !== 1 || !(opts.years > 0)) {
    process.stderr.write('usage: icaljs_batch.mjs --icaljs DIR --from YYYY-MM-DD --years N LISTFILE\n');
    process.exit(2);
  }
  opts.list = rest[0];
  return opts;
}

async function loadIcal(dir) {
  // Resolve the ESM entry point from the package's own metadata (as icaljs_check.mjs does).
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  let entry = null;
  const ex = pkg.exports;
  if (typeof ex === 'string') entry = ex;
  else if (ex && typeof ex === 'object') {
    const root = ex['.'] ?? ex;
    entry = typeof root === 'string' ? root : (root.import ?? root.default ?? null);
    if (entry && typeof entry === 'object') entry = entry.default ?? null;
  }
  entry = entry ?? pkg.module ?? pkg.main ?? 'dist/ical.js';
  const mod = await import(pathToFileURL(join(dir, entry)).href);
  return mod.default ?? mod;
}

function describe(err) {
  return (err && err.message) ? err.message : String(err);
}

function decodeAll(ICAL, comp, errors, floating) {
  for (const prop of comp.getAllProperties()) {
    try {
      prop.getValues();
    } catch (e) {
      errors.push(`${comp.name.toUpperCase()} ${prop.name.toUpperCase()}: ${describe(e)}`);
    }
    const tzid = prop.getParameter('tzid');
    if (typeof tzid === 'string' && !comp.getTimeZoneByID(tzid) && !ICAL.TimezoneService.has(tzid)) {
      floating.add(tzid);
    }
  }
  for (const sub of comp.getAllSubcomponents()) decodeAll(ICAL, sub, errors, floating);
}

function checkFile(ICAL, file, fromSec, endSec) {
  let text;
  try {
    text = new TextDecoder('utf-8').decode(readFileSync(file));
  } catch (e) {
    return { ok: false, error: `cannot read input: ${describe(e)}` };
  }
  let jcal;
  try {
    jcal = ICAL.parse(text);
  } catch (e) {
    return { ok: false, error: `parse error: ${describe(e)}` };
  }
  const roots = (Array.isArray(jcal) && typeof jcal[0] === 'string') ? [jcal] : jcal;
  if (!Array.isArray(roots) || roots.length === 0) {
    return { ok: false, error: 'no calendar component found' };
  }

  const errors = [];
  const notes = [];
  let events = 0;
  let occurrences = 0;
  const uids = new Set();
  const floating = new Set();
  const started = Date.now();
  let truncated = false;

  const inWindow = (t) => {
    const s = t.toUnixTime();
    return s >= fromSec && s < endSec;
  };

  for (const raw of roots) {
    let cal;
    try {
      cal = new ICAL.Component(raw);
    } catch (e) {
      return { ok: false, error: `cannot build component: ${describe(e)}` };
    }
    if (cal.name !== 'vcalendar') {
      return { ok: false, error: `top-level component is ${cal.name.toUpperCase()}, not VCALENDAR` };
    }
    decodeAll(ICAL, cal, errors, floating);

    const vevents = cal.getAllSubcomponents('vevent');
    events += vevents.length;

    const groups = new Map();
    let anon = 0;
    for (const ve of vevents) {
      const uid = ve.getFirstPropertyValue('uid');
      const key = uid ? `uid:${uid}` : `anon:${anon++}`;
      if (uid) uids.add(uid);
      if (!groups.has(key)) groups.set(key, { masters: [], exceptions: [] });
      const g = groups.get(key);
      if (ve.hasProperty('recurrence-id')) g.exceptions.push(ve);
      else g.masters.push(ve);
    }

    for (const [key, g] of groups) {
      if (g.masters.length > 1) {
        notes.push(`${g.masters.length} VEVENTs share ${key.replace(/^uid:/, 'UID ')} without RECURRENCE-ID`);
      }
      if (g.masters.length === 0) {
        for (const ex of g.exceptions) {
          try {
            const ev = new ICAL.Event(ex);
            if (ev.startDate && inWindow(ev.startDate)) occurrences++;
          } catch (e) {
            errors.push(`VEVENT ${key}: ${describe(e)}`);
          }
        }
        continue;
      }
      for (const master of g.masters) {
        try {
          const ev = new ICAL.Event(master, { strictExceptions: true, exceptions: g.exceptions });
          const start = ev.startDate;
          if (!start) {
            errors.push(`VEVENT ${key}: no DTSTART`);
            continue;
          }
          if (!ev.isRecurring()) {
            if (inWindow(start)) occurrences++;
            continue;
          }
          const it = ev.iterator();
          let next;
          let steps = 0;
          while ((next = it.next())) {
            if (next.toUnixTime() >= endSec) break;
            if (++steps > MAX_STEPS_PER_EVENT || Date.now() - started > TIME_BUDGET_MS) {
              truncated = true;
              break;
            }
            const det = ev.getOccurrenceDetails(next);
            if (inWindow(det.startDate)) occurrences++;
          }
        } catch (e) {
          errors.push(`VEVENT ${key}: ${describe(e)}`);
        }
      }
    }
  }

  if (floating.size) {
    notes.push(`TZID ${[...floating].join(', ')} not defined; ical.js reads those times as floating`);
  }
  if (truncated) notes.push('recurrence expansion stopped early (step or time limit); occurrences is a lower bound');
  if (errors.length) {
    const more = errors.length > 3 ? ` (+${errors.length - 3} more)` : '';
    return { ok: false, error: errors.slice(0, 3).join('; ') + more, events };
  }
  return { ok: true, events, uids: uids.size, occurrences, notes };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const ICAL = await loadIcal(opts.icaljs);
  const fromDate = new Date(`${opts.from}T00:00:00Z`);
  if (Number.isNaN(fromDate.getTime())) {
    process.stderr.write(`bad --from ${opts.from}\n`);
    process.exit(2);
  }
  const endDate = new Date(fromDate.getTime());
  endDate.setUTCFullYear(endDate.getUTCFullYear() + opts.years);
  const fromSec = Math.floor(fromDate.getTime() / 1000);
  const endSec = Math.floor(endDate.getTime() / 1000);

  const files = readFileSync(opts.list, 'utf8').split('\n').filter((line) => line !== '');
  for (const file of files) {
    // A fresh process starts with no zone table at all (not even UTC): _hard_reset restores that.
    if (typeof ICAL.TimezoneService._hard_reset === 'function') ICAL.TimezoneService._hard_reset();
    else ICAL.TimezoneService.reset();
    let result;
    try {
      result = checkFile(ICAL, file, fromSec, endSec);
    } catch (e) {
      result = { ok: false, error: `internal error: ${describe(e)}` };
    }
    // Synchronous writes: the line is out before the next file starts, so a hang or a crash
    // is charged to the right file.
    writeSync(1, JSON.stringify(result) + '\n');
  }
}

main().catch((e) => {
  process.stderr.write(`icaljs_batch: ${describe(e)}\n`);
  process.exit(2);
});
