/* Quick choices beside the admin's date and time pickers (contracts/admin/quick_dates.py):
   a click fills the field's date and time boxes, in UTC, with
   - data-at: an instant the server worked out;
   - data-days: now plus that many days, to the minute;
   - data-period: the start of the billing period holding now, from the form's cycle and
     anchor fields (named in the attribute), by pricing/cycles.py's rule. */
'use strict';
{
    const CYCLE_MONTHS = {monthly: 1, quarterly: 3, yearly: 12};
    const DAY = 24 * 60 * 60 * 1000;
    const pad = (number) => String(number).padStart(2, '0');

    // The anchor day in the month numbered year * 12 + month - 1; past the month's end,
    // the month's last day.
    function anchorIn(index, day) {
        const year = Math.floor(index / 12), month = index % 12;
        const last = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
        return new Date(Date.UTC(year, month, Math.min(day, last)));
    }

    function number(form, name, low, high, otherwise) {
        const value = Number.parseInt(form.elements[name] ? form.elements[name].value : '', 10);
        return value >= low && value <= high ? value : otherwise;
    }

    function periodStart(form, names, now) {
        const [cycle, day, month] = names.split(' ');
        const step = CYCLE_MONTHS[form.elements[cycle] && form.elements[cycle].value] || 1;
        const anchorDay = number(form, day, 1, 31, 1);
        const anchorMonth = number(form, month, 1, 12, 1);
        const index = now.getUTCFullYear() * 12 + now.getUTCMonth();
        let start = index - ((((index - (anchorMonth - 1)) % step) + step) % step);
        if (anchorIn(start, anchorDay) > now) {
            start -= step;
        }
        return anchorIn(start, anchorDay);
    }

    document.addEventListener('click', (event) => {
        const choice = event.target.closest('[data-quick-for]');
        if (!choice) {
            return;
        }
        event.preventDefault();
        const now = new Date();
        let at;
        if (choice.dataset.at) {
            at = new Date(choice.dataset.at);
        } else if (choice.dataset.days) {
            at = new Date(now.getTime() + Number(choice.dataset.days) * DAY);
        } else {
            at = periodStart(choice.closest('form'), choice.dataset.period, now);
        }
        const boxes = choice.dataset.quickFor;
        document.getElementById(`${boxes}_0`).value =
            `${at.getUTCFullYear()}-${pad(at.getUTCMonth() + 1)}-${pad(at.getUTCDate())}`;
        document.getElementById(`${boxes}_1`).value =
            `${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())}:00`;
    });
}
