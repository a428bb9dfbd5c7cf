"""The official client libraries against arkiv-sim, with only the base URL changed.

Usage: python official_clients.py http://127.0.0.1:PORT

Microsoft: MSAL (client credentials) and msgraph-sdk. Google:
google-auth service-account credentials with domain-wide delegation and
google-api-python-client with its bundled discovery documents. For each
workload it authenticates, lists, pages, delta-syncs, downloads, inserts and
deletes, and asserts what it sees. Exits non-zero on the first failure.

Two adapters point the libraries at a plain-http loopback simulator, and
nothing else is changed: MSAL refuses non-https authorities, so it is given
https://127.0.0.1:PORT and its transport rewrites the scheme (announcing
X-Forwarded-Proto: https, as a TLS-terminating proxy would); the Google
client builds upload URLs as https from its discovery document, so its
transport does the same. Both transports refuse any other host, so nothing
can leak to the real services.
"""

import asyncio
import base64
import datetime
import io
import json
import sys
import time
import urllib.parse

import google_auth_httplib2
import httplib2
import msal
import requests
from azure.core.credentials import AccessToken
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.http import MediaIoBaseDownload, MediaIoBaseUpload
from msgraph import GraphServiceClient
from msgraph.generated.models.message import Message
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.event import Event
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import DeltaRequestBuilder as CalendarDelta
from kiota_abstractions.base_request_configuration import RequestConfiguration

SIM = sys.argv[1].rstrip("/")
HOST = urllib.parse.urlparse(SIM).netloc
HTTPS = f"https://{HOST}"


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print(f"ok  {what}")


# ---------------------------------------------------------------- Microsoft

class SimSession(requests.Session):
    """MSAL's transport: https://sim → http://sim, nothing else."""

    def request(self, method, url, *args, **kwargs):
        if url.startswith(HTTPS + "/"):
            url = SIM + url[len(HTTPS):]
        elif not url.startswith(SIM + "/"):
            raise RuntimeError(f"blocked request to {url}")
        headers = kwargs.pop("headers", None) or {}
        headers["X-Forwarded-Proto"] = "https"
        return super().request(method, url, *args, headers=headers, **kwargs)


class MsalCredential:
    """An azure.core TokenCredential backed by MSAL's client-credentials flow."""

    def __init__(self, tenant_id, client_id, secret):
        self.app = msal.ConfidentialClientApplication(
            client_id,
            client_credential=secret,
            authority=f"{HTTPS}/{tenant_id}",
            instance_discovery=False,
            http_client=SimSession(),
        )

    def get_token(self, *scopes, **kwargs):
        result = self.app.acquire_token_for_client(list(scopes))
        if "access_token" not in result:
            raise RuntimeError(f"MSAL: {result}")
        return AccessToken(result["access_token"], int(time.time()) + int(result["expires_in"]))

    def close(self):
        pass


async def microsoft(manifest):
    tenant = manifest["m365"][0]
    # The tenant admin consents (the simulated admin approves at once).
    consent = requests.get(
        f"{SIM}/{tenant['domain']}/adminconsent",
        params={"client_id": tenant["client_id"], "redirect_uri": "https://app.example/cb", "state": "py"},
        allow_redirects=False,
    )
    location = consent.headers["location"]
    check("admin_consent=True" in location and "state=py" in location, "admin consent redirects back approved")

    credential = MsalCredential(tenant["tenant_id"], tenant["client_id"], tenant["client_secret"])
    client = GraphServiceClient(credential, scopes=["https://graph.microsoft.com/.default"])
    client.request_adapter.base_url = f"{SIM}/v1.0"

    # Users, paged two at a time by following @odata.nextLink.
    config = RequestConfiguration(query_parameters=client.users.UsersRequestBuilderGetQueryParameters(top=2))
    page = await client.users.get(request_configuration=config)
    users = list(page.value)
    while page.odata_next_link:
        page = await client.users.with_url(page.odata_next_link).get()
        users.extend(page.value)
    check(len(users) == len(tenant["users"]), f"users paged to the end: {len(users)}")
    user = tenant["users"][0]["id"]
    mail = client.users.by_user_id(user)

    # Messages delta of the inbox, to the deltaLink.
    inbox = mail.mail_folders.by_mail_folder_id("inbox").messages
    page = await inbox.delta.get()
    messages = list(page.value)
    while page.odata_next_link:
        page = await inbox.delta.with_url(page.odata_next_link).get()
        messages.extend(page.value)
    delta_link = page.odata_delta_link
    check(delta_link and delta_link.startswith(SIM), "messages delta ends with an absolute deltaLink")
    mime = await mail.messages.by_message_id(messages[0].id).content.get()
    check(b"Message-ID:" in mime, "message MIME downloaded")

    created = await mail.mail_folders.by_mail_folder_id("inbox").messages.post(
        Message(subject="From msgraph-sdk", body=ItemBody(content="hello"))
    )
    page = await inbox.delta.with_url(delta_link).get()
    check([m.id for m in page.value] == [created.id], "the created message shows up once in the next delta")
    await mail.messages.by_message_id(created.id).delete()
    page = await inbox.delta.with_url(page.odata_delta_link).get()
    removed = [m for m in page.value if (m.additional_data or {}).get("@removed")]
    check([m.id for m in removed] == [created.id], "the deleted message shows as @removed")

    # Calendar view delta over a window; create and delete an event.
    window = RequestConfiguration(query_parameters=CalendarDelta.DeltaRequestBuilderGetQueryParameters(
        start_date_time="2026-01-01T00:00:00Z", end_date_time="2027-12-31T00:00:00Z"))
    page = await mail.calendar_view.delta.get(request_configuration=window)
    events = list(page.value)
    while page.odata_next_link:
        page = await mail.calendar_view.delta.with_url(page.odata_next_link).get()
        events.extend(page.value)
    check(len(events) > 0, f"calendar view delta listed {len(events)} events")
    event = await mail.events.post(Event(
        subject="From msgraph-sdk",
        start=DateTimeTimeZone(date_time="2026-12-02T10:00:00", time_zone="UTC"),
        end=DateTimeTimeZone(date_time="2026-12-02T11:00:00", time_zone="UTC"),
    ))
    page = await mail.calendar_view.delta.with_url(page.odata_delta_link).get()
    check([e.id for e in page.value] == [event.id], "the created event shows up in the next delta")
    await mail.events.by_event_id(event.id).delete()

    # OneDrive: root delta, download (302 followed), upload, delete.
    drive = await mail.drive.get()
    items = client.drives.by_drive_id(drive.id).items
    page = await items.by_drive_item_id("root").delta.get()
    entries = list(page.value)
    while page.odata_next_link:
        page = await items.by_drive_item_id("root").delta.with_url(page.odata_next_link).get()
        entries.extend(page.value)
    files = [e for e in entries if e.file is not None and (e.size or 0) > 0]
    data = await items.by_drive_item_id(files[0].id).content.get()
    check(len(data) == files[0].size, "file downloaded through the 302")
    uploaded = await items.by_drive_item_id("root:/from-python.txt:").content.put(b"uploaded by msgraph-sdk")
    check(uploaded.size == len(b"uploaded by msgraph-sdk"), "file uploaded")
    await items.by_drive_item_id(uploaded.id).delete()
    page = await items.by_drive_item_id("root").delta.with_url(page.odata_delta_link).get()
    check(any(e.id == uploaded.id and e.deleted is not None for e in page.value), "the deletion shows in the drive delta")


# ------------------------------------------------------------------- Google

class SimHttp(httplib2.Http):
    """The Google client's transport: https://sim → http://sim, nothing else."""

    def request(self, uri, method="GET", *args, **kwargs):
        if uri.startswith(HTTPS + "/"):
            uri = SIM + uri[len(HTTPS):]
        elif not uri.startswith(SIM + "/"):
            raise RuntimeError(f"blocked request to {uri}")
        return super().request(uri, method, *args, **kwargs)


SCOPES = [
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/drive",
    "https://www.googleapis.com/auth/calendar",
]


def service(info, subject, name, version, endpoint):
    creds = service_account.Credentials.from_service_account_info(info, scopes=SCOPES, subject=subject)
    http = google_auth_httplib2.AuthorizedHttp(creds, http=SimHttp())
    return build(name, version, http=http, static_discovery=True, client_options={"api_endpoint": endpoint})


def paged(request_fn, next_fn, key):
    items, request = [], request_fn()
    while request is not None:
        response = request.execute()
        items.extend(response.get(key, []))
        last = response
        request = next_fn(request, response)
    return items, last


def google(manifest):
    domain = manifest["google"][0]
    info = domain["service_account"]
    user = domain["users"][1]["primaryEmail"]

    directory = service(info, domain["admin"], "admin", "directory_v1", f"{SIM}/")
    users, _ = paged(lambda: directory.users().list(customer="my_customer", maxResults=2),
                     directory.users().list_next, "users")
    check(len(users) == len(domain["users"]), f"directory users paged to the end: {len(users)}")

    gmail = service(info, user, "gmail", "v1", f"{SIM}/")
    messages, _ = paged(lambda: gmail.users().messages().list(userId="me", maxResults=2),
                        gmail.users().messages().list_next, "messages")
    check(len(messages) > 2, f"gmail messages paged: {len(messages)}")
    raw = gmail.users().messages().get(userId="me", id=messages[0]["id"], format="raw").execute()["raw"]
    check(b"Message-ID:" in base64.urlsafe_b64decode(raw), "raw message decoded")
    start = gmail.users().getProfile(userId="me").execute()["historyId"]
    rfc822 = (f"From: py@example.org\r\nTo: {user}\r\nSubject: From the Python client\r\n"
              "Message-ID: <py1@example.org>\r\nDate: Wed, 4 Nov 2026 10:00:00 +0000\r\n\r\nhi\r\n").encode()
    imported = gmail.users().messages().import_(
        userId="me", body={"labelIds": ["INBOX"]},
        media_body=MediaIoBaseUpload(io.BytesIO(rfc822), mimetype="message/rfc822"),
    ).execute()
    gmail.users().messages().delete(userId="me", id=imported["id"]).execute()
    history = gmail.users().history().list(userId="me", startHistoryId=start).execute()["history"]
    check(any("messagesAdded" in h for h in history) and any("messagesDeleted" in h for h in history),
          "history shows the import and the deletion")

    drive = service(info, user, "drive", "v3", f"{SIM}/drive/v3/")
    token = drive.changes().getStartPageToken(supportsAllDrives=True).execute()["startPageToken"]
    files, _ = paged(lambda: drive.files().list(pageSize=2, supportsAllDrives=True, includeItemsFromAllDrives=True),
                     drive.files().list_next, "files")
    binary = next(f for f in files if int(f.get("size", "0")) > 0)
    buffer = io.BytesIO()
    downloader = MediaIoBaseDownload(buffer, drive.files().get_media(fileId=binary["id"], supportsAllDrives=True))
    done = False
    while not done:
        _, done = downloader.next_chunk()
    check(len(buffer.getvalue()) == int(binary["size"]), "drive file downloaded")
    doc = next(f for f in files if f["mimeType"] == "application/vnd.google-apps.document" and "huge" not in f["name"])
    exported = drive.files().export(fileId=doc["id"], mimeType="application/pdf").execute()
    check(len(exported) > 0, "google doc exported to PDF")
    created = drive.files().create(
        body={"name": "from-python.txt"},
        media_body=MediaIoBaseUpload(io.BytesIO(b"uploaded by the python client"), mimetype="text/plain"),
    ).execute()
    drive.files().delete(fileId=created["id"]).execute()
    changes, last = [], {"nextPageToken": token}
    while "nextPageToken" in last:
        last = drive.changes().list(pageToken=last["nextPageToken"], pageSize=1, supportsAllDrives=True,
                                    includeItemsFromAllDrives=True).execute()
        changes.extend(last.get("changes", []))
    check(any(c["fileId"] == created["id"] and c["removed"] for c in changes), "drive changes show the removal")
    check("newStartPageToken" in last, "the change list ends with a new start token")

    calendar = service(info, user, "calendar", "v3", f"{SIM}/calendar/v3/")
    events, last = paged(lambda: calendar.events().list(calendarId="primary", maxResults=2, showDeleted=True),
                         calendar.events().list_next, "items")
    sync = last["nextSyncToken"]
    now = datetime.datetime.now(datetime.timezone.utc)
    inserted = calendar.events().insert(calendarId="primary", sendUpdates="none", body={
        "summary": "From the Python client",
        "start": {"dateTime": now.isoformat()},
        "end": {"dateTime": (now + datetime.timedelta(hours=1)).isoformat()},
    }).execute()
    calendar.events().delete(calendarId="primary", eventId=inserted["id"]).execute()
    delta = calendar.events().list(calendarId="primary", syncToken=sync).execute()["items"]
    check([e["id"] for e in delta] == [inserted["id"]] and delta[0]["status"] == "cancelled",
          "the sync token shows the event, cancelled")


async def main():
    manifest = requests.get(f"{SIM}/_sim/manifest").json()
    await microsoft(manifest)
    google(manifest)
    print("all official-client checks passed")


if __name__ == "__main__":
    asyncio.run(main())
