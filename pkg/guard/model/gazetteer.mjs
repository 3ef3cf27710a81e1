// Extracts the name and place gazetteers of the entities detector from
// @faker-js/faker 10.6.0 (MIT) and countries-list 3.4.1 (MIT) into one text
// file with sections (first, last, place, word, title). Regenerate with
//
//   npm install --no-save @faker-js/faker@10.6.0 countries-list@3.4.1
//   node gazetteer.mjs | gzip -9 -n > gazetteer.txt.gz
import { allLocales } from '@faker-js/faker';
import { countries } from 'countries-list';
const sets = { first: new Set(), last: new Set(), place: new Set(), word: new Set(), title: new Set() };
const flat = (v) => v == null ? [] : Array.isArray(v) ? v.flatMap(flat) : typeof v === 'object' ? Object.values(v).flatMap(flat) : typeof v === 'string' ? [v] : [];
const latin = (s) => /^[\p{Script=Latin}\p{M}' .\-]+$/u.test(s);
for (const [name, loc] of Object.entries(allLocales)) {
  const p = loc.person || {}, l = loc.location || {};
  for (const s of flat(p.first_name).concat(flat(p.middle_name))) if (latin(s)) sets.first.add(s);
  for (const s of flat(p.last_name)) if (latin(s)) sets.last.add(s);
  for (const s of flat(p.prefix)) if (latin(s)) sets.title.add(s);
  for (const s of flat(l.city_name).concat(flat(l.country), flat(l.state), flat(l.county), flat(l.continent))) if (latin(s) && !s.includes('{')) sets.place.add(s);
  if (name.startsWith('en')) for (const s of flat(loc.word)) if (/^[a-z]+$/.test(s)) sets.word.add(s);
}
for (const c of Object.values(countries)) { sets.place.add(c.name); if (latin(c.native)) sets.place.add(c.native); if (latin(c.capital)) sets.place.add(c.capital); }
for (const [k, s] of Object.entries(sets)) {
  console.log('# ' + k);
  console.log([...s].filter(x => x.trim()).map(x => x.trim()).sort().join('\n'));
}
