from django import forms
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.files.uploadedfile import UploadedFile

from accounts import avatars, selectors
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
