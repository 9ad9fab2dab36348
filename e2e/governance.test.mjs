// Running a room and an account from the app (issue 12): invite links, roles, mutes, bans, API tokens and
// account deletion, with three people in separate browser contexts against the real server.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';

import { Webhook } from 'standardwebhooks';

import { Server, bodies, eventually, launchBrowser, logIn, openPage } from './harness.mjs';

describe('a room run by its owner and admins', () => {
  let server;
  let browser;
  let ann; // the owner
  let ben; // joins by invite link, becomes admin
  let cat; // the third person
  let pageOwner;
  let pageBen;
  let pageCat;
  let roomId;
  let inviteLink;

  before(async () => {
    // Webhooks may reach the test's receiver on this host.
    server = await Server.create({ WEBHOOK_ALLOW_HOSTS: '127.0.0.1' });
    browser = await launchBrowser();
    [ann, ben, cat] = [await server.user('ann'), await server.user('ben'), await server.user('cat')];
    pageOwner = await openPage(browser, server);
    await logIn(pageOwner, ann);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** Opens the member panel of the room on screen. */
  async function openMembers(page) {
    const toggle = page.locator('.members-toggle');
    if ((await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click();
    await page.locator('.members').waitFor();
  }

  function memberRow(page, user) {
    return page.locator(`.member[data-user-id="${user.user.id}"]`);
  }

  test('an owner makes a private room and invites by link; signed out, the invitee logs in and joins', async () => {
    await pageOwner.getByRole('button', { name: 'New room' }).click();
    await pageOwner.getByLabel('Room name').fill('team');
    await pageOwner.getByLabel('Private (members only)').check();
    await pageOwner.getByRole('button', { name: 'Create' }).click();
    await pageOwner.locator('#room-title', { hasText: 'team' }).waitFor();
    roomId = Number(new URL(pageOwner.url()).pathname.split('/').at(-1));

    await pageOwner.getByRole('link', { name: 'Room settings' }).click();
    await pageOwner.locator('#room-settings-title').waitFor();
    await pageOwner.getByRole('button', { name: 'Create invite link' }).click();
    inviteLink = await pageOwner.locator('.invite-link').first().inputValue();
    assert.match(inviteLink, new RegExp(`^${server.url}/invite/[A-Za-z0-9_-]{22,}$`));

    // Ben opens the link signed out: the login comes first, then the invitation.
    pageBen = await openPage(browser, server);
    await pageBen.goto(inviteLink);
    await pageBen.getByRole('button', { name: 'Log in', exact: true }).waitFor();
    await logIn(pageBen, ben);
    await pageBen.getByRole('heading', { name: 'You are invited to team' }).waitFor();
    await pageBen.getByRole('button', { name: 'Join' }).click();
    await pageBen.locator('#room-title', { hasText: 'team' }).waitFor();
    await pageBen.locator('.room-item', { hasText: 'team' }).waitFor();

    // The owner sees the new member in the panel, live.
    await pageOwner.getByRole('link', { name: 'Back to the room' }).click();
    await openMembers(pageOwner);
    await memberRow(pageOwner, ben).locator('.role', { hasText: 'member' }).waitFor();
    await memberRow(pageOwner, ann).locator('.role', { hasText: 'owner' }).waitFor();
  });

  test('the owner makes the invitee admin; the admin mutes a third person, who cannot send and sees why', async () => {
    await memberRow(pageOwner, ben).getByRole('button', { name: 'Manage ben' }).click();
    await memberRow(pageOwner, ben).getByRole('button', { name: 'Make admin' }).click();
    await memberRow(pageOwner, ben).locator('.role', { hasText: 'admin' }).waitFor();

    const code = inviteLink.split('/').at(-1);
    await server.api('POST', `/invites/${code}/accept`, { token: cat.token });
    pageCat = await openPage(browser, server);
    await logIn(pageCat, cat);
    await pageCat.locator('.room-item', { hasText: 'team' }).getByRole('link').click();
    await pageCat.locator('#composer-input').waitFor();
    assert.equal(await pageCat.locator('#composer-input').isDisabled(), false);

    // Ben's page learnt his new role live: the panel offers him moderation, but not over the owner.
    await openMembers(pageBen);
    await memberRow(pageBen, cat).getByRole('button', { name: 'Manage cat' }).click();
    assert.equal(await memberRow(pageBen, ann).getByRole('button', { name: 'Manage ann' }).count(), 0);
    assert.equal(await memberRow(pageBen, ben).getByRole('button').count(), 0, 'nobody manages themselves');
    await memberRow(pageBen, cat).getByRole('button', { name: '1 h' }).click();
    await memberRow(pageBen, cat).locator('.muted-tag', { hasText: 'muted until' }).waitFor();

    // Cat, at once: the composer is disabled and a banner says why and until when.
    await eventually(() => pageCat.locator('#composer-input').isDisabled(), 'the composer is disabled');
    const banner = await pageCat.locator('.room-banner').textContent();
    assert.match(banner, /A moderator muted you: you can read but not write \(muted until .+\)/);
    assert.match(await pageCat.locator('#composer-input').getAttribute('placeholder'), /You are muted until/);
    // The server refuses it too (a client that ignores the disabled box gets nowhere).
    const refused = await server.api('POST', `/rooms/${roomId}/messages`, {
      token: cat.token, body: { body: 'let me speak' }, expect: [403],
    });
    assert.equal(refused.code, 'muted');

    // Unmuted: the composer comes back.
    await memberRow(pageBen, cat).getByRole('button', { name: 'Manage cat' }).click();
    await memberRow(pageBen, cat).getByRole('button', { name: 'Unmute' }).click();
    await eventually(async () => !(await pageCat.locator('#composer-input').isDisabled()), 'the composer is back');
    assert.equal(await pageCat.locator('.room-banner').count(), 0);
  });

  test('a ban, with its reason, closes the room on screen and survives a rejoin attempt until lifted', async () => {
    await memberRow(pageBen, cat).getByRole('button', { name: 'Manage cat' }).click();
    await memberRow(pageBen, cat).getByRole('button', { name: 'Ban…' }).click();
    await pageBen.getByLabel('Reason (optional)').fill('spam');
    await memberRow(pageBen, cat).getByRole('button', { name: 'Ban', exact: true }).click();
    await pageBen.locator('.ban', { hasText: 'cat: spam' }).waitFor();
    assert.equal(await memberRow(pageBen, cat).count(), 0);

    await pageCat.locator('.notice', { hasText: 'You were banned from team.' }).waitFor();
    await eventually(async () => !pageCat.url().includes(`/rooms/${roomId}`), 'the room closes');
    assert.equal(await pageCat.locator('.room-item', { hasText: 'team' }).count(), 0);

    // The invite link does not bring a banned person back.
    await pageCat.goto(inviteLink);
    const join = pageCat.getByRole('button', { name: 'Join' });
    await Promise.race([join.waitFor(), pageCat.locator('.invite-page .error').waitFor()]);
    if (await join.count()) await join.click();
    await pageCat.locator('.invite-page .error', { hasText: 'banned' }).waitFor();
    assert.equal(await pageCat.locator('.room-item', { hasText: 'team' }).count(), 0);
    await server.api('POST', `/rooms/${roomId}/join`, { token: cat.token, expect: [403, 404] });

    // The audit log shows who did what.
    await pageOwner.getByRole('link', { name: 'Room settings' }).click();
    await pageOwner.locator('.audit-list li', { hasText: 'ben banned cat: spam' }).waitFor();
    await pageOwner.locator('.audit-list li', { hasText: 'ann made ben admin' }).waitFor();
    await pageOwner.locator('.audit-list li', { hasText: 'ben muted cat until' }).waitFor();

    // Unbanned by the owner, cat can come back through the link.
    await pageOwner.getByRole('link', { name: 'Back to the room' }).click();
    await openMembers(pageOwner);
    await pageOwner.getByRole('button', { name: 'Unban cat' }).click();
    await eventually(async () => (await pageOwner.locator('.ban').count()) === 0, 'the ban is lifted');
    await pageCat.goto(inviteLink);
    await pageCat.getByRole('button', { name: 'Join' }).click();
    await pageCat.locator('#room-title', { hasText: 'team' }).waitFor();
  });

  test('an API token created in settings posts a message with plain HTTP', async () => {
    await pageBen.getByRole('link', { name: 'Settings', exact: true }).click();
    await pageBen.getByLabel('Name', { exact: true }).fill('ci-bot');
    await pageBen.getByRole('button', { name: 'Create token' }).click();
    const secret = await pageBen.locator('.token-secret').inputValue();
    assert.ok(secret.length > 20, 'the secret is shown once');
    await pageBen.locator('.token', { hasText: 'ci-bot' }).waitFor();

    // What `curl -H "Authorization: Bearer …" -d '{"body": …}'` would send.
    const resp = await fetch(`${server.url}/api/v1/rooms/${roomId}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ body: 'build 42 passed' }),
    });
    assert.equal(resp.status, 201);
    await pageOwner.locator('.message .body', { hasText: 'build 42 passed' }).waitFor();

    // Revoked in settings, it stops working.
    await pageBen.getByRole('button', { name: 'Done' }).click();
    await pageBen.getByRole('button', { name: 'Revoke ci-bot' }).click();
    await eventually(async () => (await pageBen.locator('.token').count()) === 0, 'the token leaves the list');
    const after = await fetch(`${server.url}/api/v1/rooms/${roomId}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ body: 'too late' }),
    });
    assert.equal(after.status, 401);
  });

  test('an incoming hook made in room settings takes Slack-style posts; deleted, it stops', async () => {
    await pageOwner.locator('.room-item', { hasText: 'team' }).getByRole('link').click();
    await pageOwner.getByRole('link', { name: 'Room settings' }).click();
    await pageOwner.getByLabel('Hook name').fill('CI');
    await pageOwner.getByRole('button', { name: 'Create hook' }).click();
    const url = await pageOwner.getByLabel("The new hook's URL").inputValue();
    assert.match(url, new RegExp(`^${server.url}/api/v1/hooks/chat_hook_[A-Za-z0-9_-]{43}$`));
    await pageOwner.locator('.hook', { hasText: 'CI' }).locator('.hint', { hasText: 'never used' }).waitFor();

    // What a CI job's Slack notifier sends.
    const post = (payload) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
    const resp = await post({ text: 'nightly build is green', username: 'nightly' });
    assert.equal(resp.status, 200);
    assert.deepEqual(await resp.json(), { ok: true });
    for (const page of [pageOwner, pageBen]) {
      await page.locator('.room-item', { hasText: 'team' }).getByRole('link').click();
      const message = page.locator('.message', { hasText: 'nightly build is green' });
      await message.locator('.author', { hasText: 'nightly' }).waitFor();
      await message.locator('.via', { hasText: "via ann's hook" }).waitFor();
    }

    await pageOwner.getByRole('link', { name: 'Room settings' }).click();
    await pageOwner.locator('.hook', { hasText: 'CI' }).locator('.hint', { hasText: 'last used' }).waitFor();
    await pageOwner.getByRole('button', { name: 'Delete CI' }).click();
    await pageOwner.getByText('No incoming hooks.').waitFor();
    assert.equal((await post({ text: 'too late' })).status, 404);
    await pageOwner.getByRole('link', { name: 'Back to the room' }).click();
    await pageOwner.locator('#room-title', { hasText: 'team' }).waitFor();
    assert.deepEqual(pageOwner.problems, []);
  });

  test('a webhook made in room settings gets signed events; its deliveries show; turned off, it gets none', async () => {
    // A receiver that checks every request with the Standard Webhooks reference library.
    const received = [];
    let secret = null;
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => { body += chunk; });
      req.on('end', () => {
        received.push(new Webhook(secret).verify(body, req.headers));
        res.end('ok');
      });
    });
    await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${receiver.address().port}/chat-events`;
    try {
      await pageOwner.locator('.room-item', { hasText: 'team' }).getByRole('link').click();
      await pageOwner.getByRole('link', { name: 'Room settings' }).click();
      await pageOwner.getByLabel('Webhook URL').fill(url);
      await pageOwner.getByLabel('member.joined').check();
      await pageOwner.getByRole('button', { name: 'Create webhook' }).click();
      secret = await pageOwner.getByLabel("The new webhook's signing secret").inputValue();
      assert.match(secret, /^whsec_[A-Za-z0-9+/=]{44}$/);
      const row = pageOwner.locator('.webhook', { hasText: url });
      await row.locator('.hint', { hasText: 'message.created, member.joined' }).waitFor();
      await row.locator('.webhook-state', { hasText: 'on' }).waitFor();

      await pageOwner.getByRole('link', { name: 'Back to the room' }).click();
      await pageOwner.locator('#composer-input').fill('tell the other systems');
      await pageOwner.locator('#composer-input').press('Enter');
      await eventually(() => received.length === 1, 'the message reached the receiver');
      assert.equal(received[0].type, 'message.created');
      assert.equal(received[0].room_id, roomId);
      assert.equal(received[0].data.body, 'tell the other systems');
      assert.equal(received[0].data.author.username, ann.username);

      // The deliveries, then off: nothing more is sent.
      await pageOwner.getByRole('link', { name: 'Room settings' }).click();
      await row.getByRole('button', { name: 'Deliveries' }).click();
      await row.locator('.delivery', { hasText: 'message.created' }).locator('.delivery-result', { hasText: '200' }).waitFor();
      await row.getByRole('button', { name: `Turn off ${url}` }).click();
      await row.locator('.webhook-state', { hasText: 'off' }).waitFor();
      await pageOwner.getByRole('link', { name: 'Back to the room' }).click();
      await pageOwner.locator('#composer-input').fill('not for the webhook');
      await pageOwner.locator('#composer-input').press('Enter');
      await pageOwner.locator('.message', { hasText: 'not for the webhook' }).waitFor();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(received.length, 1);

      await pageOwner.getByRole('link', { name: 'Room settings' }).click();
      await pageOwner.locator('.webhook', { hasText: url }).getByRole('button', { name: 'Delete' }).click();
      await pageOwner.getByText('No webhooks.').waitFor();
      await pageOwner.getByRole('link', { name: 'Back to the room' }).click();
      await pageOwner.locator('#room-title', { hasText: 'team' }).waitFor();
      assert.deepEqual(pageOwner.problems, []);
    } finally {
      receiver.close();
    }
  });

  test("deleting an account shows the person's old messages as from a deleted user", async () => {
    await pageCat.locator('#composer-input').fill('cat was here');
    await pageCat.locator('#composer-input').press('Enter');
    await pageOwner.locator('.message', { hasText: 'cat was here' }).waitFor();
    await openMembers(pageOwner);
    await memberRow(pageOwner, cat).waitFor();

    await pageCat.getByRole('link', { name: 'Settings', exact: true }).click();
    await pageCat.getByLabel('Password', { exact: true }).fill(cat.password);
    pageCat.confirmNext = true;
    await pageCat.getByRole('button', { name: 'Delete my account' }).click();
    await pageCat.getByRole('button', { name: 'Log in', exact: true }).waitFor();

    // The owner sees the member leave at once, and the message stays, from "Deleted user".
    await eventually(async () => (await memberRow(pageOwner, cat).count()) === 0, 'cat leaves the member list');
    await pageOwner.reload();
    const row = pageOwner.locator('.message', { hasText: 'cat was here' });
    await row.waitFor();
    assert.ok((await bodies(pageOwner)).includes('cat was here'));
    const author = pageOwner.locator('.message .author.deleted-user');
    await author.first().waitFor();
    assert.equal(await author.first().textContent(), 'Deleted user');
    // And nobody can log in as cat any more.
    await server.api('POST', '/auth/login', { body: { username: 'cat', password: cat.password }, expect: [401] });
    for (const page of [pageOwner, pageBen, pageCat]) assert.deepEqual(page.problems, []);
  });
});
