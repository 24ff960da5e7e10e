"""The dashboard's words: zh-CN first, English on request (the ``lang`` cookie).

Each message is a key with its two texts; a page asks ``t("key")``. A key missing from
the table is a mistake caught by tests/test_dashboard.py, not shown as the key.
"""

from __future__ import annotations

from collections.abc import Callable

LANGS = ("zh-CN", "en")
DEFAULT = "zh-CN"

MESSAGES: dict[str, tuple[str, str]] = {
    "app": ("保险售后工作台", "After-sales desk"),
    "overview": ("总览", "Overview"),
    "deadlines": ("时限与超时", "Deadlines & breaches"),
    "inbox": ("站内通知", "Inbox"),
    "sla": ("时效报告", "SLA report"),
    "log_in": ("登录", "Log in"),
    "log_out": ("退出", "Log out"),
    "user_id": ("用户名", "User id"),
    "password": ("密码", "Password"),
    "signed_in_as": ("当前用户", "Signed in as"),
    "language": ("English", "中文"),
    "intake_today": ("今日受理", "Opened today"),
    "opened_week": ("本周受理", "Opened this week"),
    "closed_week": ("本周结案", "Closed this week"),
    "breaches_now": ("当前超时", "Breached now"),
    "workflow": ("业务类型", "Workflow"),
    "rule": ("时限规则", "Rule"),
    "org_unit": ("机构", "Org unit"),
    "level": ("最低升级级别", "Least escalation level"),
    "handler": ("经办人", "Handler"),
    "handler_hint": ("经办人账号", "The handler's user id"),
    "filter": ("筛选", "Filter"),
    "all": ("全部", "All"),
    "case": ("案件", "Case"),
    "state": ("状态", "State"),
    "due": ("到期时间", "Due"),
    "time_left": ("剩余时间", "Time left"),
    "status": ("计时状态", "Status"),
    "running": ("计时中", "running"),
    "paused": ("已暂停", "paused"),
    "provisional": ("暂定（节假日未公布）", "provisional (holidays not yet published)"),
    "band_ok": ("剩余超过一个工作日", "more than one working day left"),
    "band_soon": ("剩余不足一个工作日", "less than one working day left"),
    "band_breached": ("已超时", "breached"),
    "no_deadlines": ("没有计时中的时限。", "No running deadlines."),
    "data": ("案件数据", "Case data"),
    "masked_note": (
        "身份证号和手机号已遮蔽：您的角色无权查看。",
        "Identity and phone numbers are masked: your role may not see them.",
    ),
    "history": ("处理记录", "History"),
    "chain_ok": (
        "处理记录已校验：哈希链完整，没有记录被改动、删除或调换。",
        "History verified: its hash chain is whole, no row altered, removed or reordered.",
    ),
    "chain_broken": (
        "处理记录校验失败：哈希链断裂，以下记录被改动、删除或调换过。",
        "History broken: its hash chain shows rows altered, removed or reordered.",
    ),
    "refusals": ("被拒绝的操作", "Refused attempts"),
    "actions": ("可执行的操作", "What you may do now"),
    "unavailable": ("暂不可执行", "Not possible now"),
    "fire": ("提交", "Submit"),
    "no_actions": ("您现在没有可执行的操作。", "There is nothing you may do on this case now."),
    "diagram": ("流程图", "Diagram"),
    "case_path": ("本案路径", "This case's path"),
    "done": ("已执行", "Done"),
    "error_form": ("表单有误，未做任何更改。", "The form has errors; nothing was changed."),
    "mark_read": ("标为已读", "Mark read"),
    "mark_all_read": ("全部标为已读", "Mark all read"),
    "unread": ("未读", "unread"),
    "no_inbox": ("没有通知。", "No notices."),
    "on_time": ("按时率", "On time"),
    "started": ("开始", "Started"),
    "met_on_time": ("按时完成", "Met on time"),
    "met_late": ("逾期完成", "Met late"),
    "breached_open": ("超时未完成", "Breached, open"),
    "month": ("月份", "Month"),
    "median_to_close": ("从受理到办结（中位数）", "Median time from opening to closing"),
    "median_in_state": ("各状态停留时长（中位数）", "Median time in each state"),
    "median": ("中位数", "Median"),
    "not_found": ("找不到该页面或案件", "No such page or case"),
    "not_found_text": (
        "该页面不存在，或者您无权查看该案件。",
        "The page does not exist, or the case is not one you may see.",
    ),
    "back": ("返回总览", "Back to the overview"),
    "throttled": ("登录尝试过多", "Too many attempts"),
    "wrong_login": ("用户名或密码错误。", "The user id or the password is wrong."),
    "disabled": ("该账户已停用，请联系管理员。", "This account is disabled; ask an administrator."),
    "forbidden": ("请求被拒绝", "Request refused"),
    "csrf": (
        "表单已过期或来自其他网站，请重新打开页面后再提交。",
        "The form expired or came from another site: open the page again and resend.",
    ),
    "db_unavailable": ("数据库暂时无法访问", "The database is unavailable"),
    "db_unavailable_text": (
        "未做任何更改。请稍后再试；如持续出现，请联系管理员。",
        "Nothing was changed. Try again in a moment; if it lasts, tell an administrator.",
    ),
    "db_unavailable_unknown": (
        "保存时与数据库的连接中断，无法确定是否已保存。请先刷新查看案件，再决定是否重试。",
        "The connection to the database was lost while saving, so whether it was saved is "
        "not known. Reload the case before trying again.",
    ),
    "storage_error": ("数据库无法使用", "The database cannot be used"),
    "storage_error_text": (
        "数据库当前无法使用，未做任何更改。请联系管理员（详情见服务器日志）。",
        "The database cannot be used as it is; nothing was changed. Tell an administrator "
        "(the server's log says why).",
    ),
    "who": ("操作人", "Who"),
    "when": ("时间", "When"),
    "event": ("操作", "Event"),
    "reasons": ("原因", "Reasons"),
    "required": ("必填", "required"),
    "live": ("自动刷新", "live"),
    "cases": ("案件数", "Cases"),
    "warned": ("预警", "Warned"),
    "breached": ("超时", "Breached"),
    "paused_for": ("已暂停时长", "Paused for"),
    "escalation": ("升级级别", "Escalation level"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "skip": ("跳到正文", "Skip to content"),
}


Translate = Callable[[str], str]


def translator(lang: str) -> Translate:
    index = 1 if lang == "en" else 0

    def t(key: str) -> str:
        return MESSAGES[key][index]

    return t
