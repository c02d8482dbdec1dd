from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.files.uploadedfile import UploadedFile
from django.template.loader import render_to_string

from accounts import avatars, selectors, tasks
from accounts.models import User
from spaces_site.errors import ServiceError


class SignupForm(UserCreationForm):
    class Meta:
        model = User
        fields = ["username", "display_name", "email"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"].required = True
        self.fields["display_name"].help_text = "Shown beside your @username. You can change it later."

    def clean_username(self):
        username = self.cleaned_data["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("That username is taken.")
        return username


class LoginForm(AuthenticationForm):
    """The stock login form, but a banned user is told they are banned."""

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username and password:
            try:
                self.user_cache = selectors.credentials_verify(
                    request=self.request, username=username, password=password
                )
            except ServiceError as error:
                raise forms.ValidationError(error.detail, code=error.code) from error
        return self.cleaned_data


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's reset form, but the e-mail goes from a task (`accounts.tasks`): the request renders
    it and hands it over, so with a broker it never waits on the mail server.

    Queued straight away, not after commit: the reset writes nothing, and the task carries the
    rendered message and reads nothing, so there is no transaction for it to wait for.
    """

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        subject = "".join(render_to_string(subject_template_name, context).splitlines())  # no newlines in headers
        tasks.password_reset_email_send_task.delay(
            user_id=context["user"].pk,
            to_email=to_email,
            subject=subject,
            body=render_to_string(email_template_name, context),
            html_body=render_to_string(html_email_template_name, context) if html_email_template_name else None,
            from_email=from_email,
        )


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["display_name", "bio", "avatar"]
        widgets = {"bio": forms.Textarea(attrs={"rows": 3, "maxlength": 160})}

    def clean_avatar(self):
        avatar = self.cleaned_data["avatar"]
        if isinstance(avatar, UploadedFile):
            # Checked and decoded here, so a bad picture is a form error; the service stores this copy.
            return avatars.avatar_resized(avatar)
        return avatar
